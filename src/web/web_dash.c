/*
 * web_dash.c — GET /: the dashboard, one page (src/web_dashboard.html)
 * compiled into the binary (the Makefile turns it into a C array with
 * xxd -i), so the daemon needs no files and the browser no CDN.
 */
#include "web/web_int.h"

extern unsigned char web_dashboard_html[];
extern unsigned int web_dashboard_html_len;

void
dash_serve(struct wreq *r)
{
	web_reply(r, 200, "text/html; charset=utf-8",
	    (const char *)web_dashboard_html, web_dashboard_html_len);
	r->headers = json_pack("{s:s}", "Cache-Control", "no-cache");
}
