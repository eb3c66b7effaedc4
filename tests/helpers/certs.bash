# certs.bash — a private CA and certificates it signs, in $C.

# make_ca NAME: a CA in $C/NAME.pem, .key
make_ca() {
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$C/$1.key" -out "$C/$1.pem" \
		-days 2 -subj "/CN=$1" 2>/dev/null
}

# make_cert NAME CN CA [EXT]: a certificate for CN signed by CA, with the
# extension line EXT (a subjectAltName, say).
make_cert() {
	openssl req -newkey rsa:2048 -nodes -keyout "$C/$1.key" -out "$C/$1.csr" \
		-subj "/CN=$2" 2>/dev/null
	printf '%s\n' "${4:-basicConstraints=CA:FALSE}" >"$C/$1.ext"
	openssl x509 -req -in "$C/$1.csr" -CA "$C/$3.pem" -CAkey "$C/$3.key" \
		-CAcreateserial -out "$C/$1.pem" -days 2 -extfile "$C/$1.ext" 2>/dev/null
}
