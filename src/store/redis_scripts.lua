#!lua name=jobfs_1
--
-- jobfs_1: the Redis 7 function library behind `jobfs --redis`.
--
-- The exact interface (names, arguments, replies, events, keys) is
-- /work/notes/redis_api.md; why it is shaped so is design11.md.  Every
-- function is called as `FCALL <name> 0 P N arg...`: ARGV[1] = P (the key
-- prefix), ARGV[2] = N (the caller's daemon number), keys built inside.
--
-- Check, then write.  A Redis script that fails after a write keeps that
-- write, so every function first checks (pass 1) that each key it may write
-- has TYPE none or the type it expects, and that its arguments parse;
-- only then does it write (pass 2), where nothing may raise an error.  A
-- key of the wrong type answers
--   WRONGTYPE jobfs: <key> holds a <type>, expected <type>
-- and a malformed call `ERR jobfs: ...`, both before any write.  Pass 1
-- checks a superset of the keys pass 2 writes (for each job involved: its
-- hash, its partials list, its queue, target set, type counters, idle set,
-- owner set and lease set).
--
-- Where this file does a little more than the contract, or reads it in one
-- particular way (the lead's C side does not depend on any of these):
--  * jobfs_reap publishes its `f` and `g` events and its `n` wake-ups to
--    every daemon concerned INCLUDING the caller N: its reply carries only
--    counts, so N would otherwise never learn that one of its own jobs
--    timed out, failed on its 4th loss or was forgotten (design11.md:
--    "reap, whose reply does not, publishes to all").  Every other function
--    skips the caller, whose reply carries the verdict.
--  * wake(T, k) publishes up to k `n T` to daemons other than the caller;
--    popping the caller does not use up one of the k (it is put back).
--  * jobfs_requeue of a targeted job wakes every idle daemon of T (the
--    rule submit uses for targeted jobs), not just one: the longest-idle
--    daemon may not be the one whose worker the job is aimed at.
--  * Stale entries are dropped instead of acted on: dispatch drops a queue
--    member whose job is gone, not queued, or holds another member; reap
--    drops P:run:D members not running on D, P:own:D members that are not
--    queued with origin D (only those are cancelled), and P:dl members of
--    finished or unknown jobs (else they would come due forever).
--  * reap also removes a dead daemon from P:idle:T of every type in
--    P:types, not only the types of P:wn:D.
--  * dispatch: a job hash of the wrong type met beyond what pass 1 looked
--    ahead at (possible only after stale members) ends the dispatch there,
--    with the jobs given so far, instead of an error after writes.
--  * Retention removes the oldest max(#older than keep_ms, ZCARD - keep_max)
--    members of P:done (both are prefixes of P:done in score order), at most
--    500; only those whose hash says finished are forgotten and counted,
--    the rest are just removed from P:done and P:all.
--
-- Lua numbers are doubles: att, seq, ls, np and pb stay far below 2^53 and
-- are formatted with %d; priorities are never numbers here (pr is stored as
-- the decimal string the daemon sent, order comes from the member's PRIO16).

local EV_MAX = 8192          -- bigger results and partials travel as '-'
local PB_MAX = 16777216      -- partial bytes kept per job
local DEAD_RUN_MAX = 1000    -- reap: P:run:D keys requeued per dead daemon per call
local DEAD_OWN_MAX = 1000    -- reap: P:own:D keys looked at per dead daemon per call
local TIMEOUT_MAX = 200      -- reap: deadlines ended per call
local RETAIN_MAX = 500       -- reap: finished jobs forgotten per call
local TYPES_MAX = 50         -- reap: empty types removed per call

-- Per call state, set by begin().
local P, N, SELF, NOW, NOWS
local seen
-- Counter deltas of the call (P:t:T, P:stats), written once each when it
-- returns (flush_incr): one HINCRBY per counter per call, not per job.
local acc, acc_keys
-- Jobs read in pass 1 (chk_job), handed to pass 2 once (take_job).
local jcache

local function begin(args, skip_self)
	P = args[1]
	N = args[2]
	-- SELF: the daemon that events and wake-ups skip (nil: skip nobody).
	if skip_self then SELF = N else SELF = nil end
	local t = redis.call('TIME')
	NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
	NOWS = string.format('%d', NOW)
	seen = {}
	acc, acc_keys = {}, {}
	jcache = {}
end

-- incr(key, field, delta): a counter moves (see acc).
local function incr(k, f, d)
	local t = acc[k]
	if not t then
		t = {}
		acc[k] = t
		acc_keys[#acc_keys + 1] = k
	end
	t[f] = (t[f] or 0) + d
end

local function flush_incr()
	for _, k in ipairs(acc_keys) do
		for f, d in pairs(acc[k]) do
			if d ~= 0 then redis.call('HINCRBY', k, f, d) end
		end
	end
	acc, acc_keys = {}, {}
end

local function fail(msg)
	error({ jobfs = msg }, 0)
end

-- chk(key, want): pass 1. The key holds nothing or a `want`.
local function chk(k, want)
	local c = want .. ' ' .. k
	if seen[c] then return end
	local t = redis.call('TYPE', k)['ok']
	if t ~= 'none' and t ~= want then
		fail('WRONGTYPE jobfs: ' .. k .. ' holds a ' .. t .. ', expected ' .. want)
	end
	seen[c] = true
end

-- soft_ok(key, want): pass 2's check, answering instead of raising.
local function soft_ok(k, want)
	if seen[want .. ' ' .. k] then return true end
	local t = redis.call('TYPE', k)['ok']
	return t == 'none' or t == want
end

-- An INCR counter: absent or an integer.
local function chk_counter(k)
	chk(k, 'string')
	local v = redis.call('GET', k)
	if v and not string.match(v, '^%-?%d+$') then
		fail('ERR jobfs: ' .. k .. ' holds no integer')
	end
	return tonumber(v or '0')
end

local function int_arg(v, what)
	local n = tonumber(v)
	if not n or n ~= math.floor(n) then
		fail('ERR jobfs: ' .. what .. ' is not an integer: ' .. tostring(v))
	end
	return n
end

local function groups(args, from, size, name)
	local n = #args - from + 1
	if n < 0 or n % size ~= 0 then
		fail('ERR jobfs: ' .. name .. ' takes groups of ' .. size .. ' arguments')
	end
	return n / size
end

-- Key names.
local function kj(key) return P .. ':j:' .. key end
local function kp(key) return P .. ':p:' .. key end
local function kt(T) return P .. ':t:' .. T end
local function ktg(T) return P .. ':tg:' .. T end
local function kidle(T) return P .. ':idle:' .. T end
local function kq(T, tg)
	if tg == nil or tg == '' then return P .. ':q:' .. T end
	return P .. ':qt:' .. #T .. ':' .. T .. ':' .. tg
end

local function kl(key) return #key .. ' ' .. key end
local function ev(s) if #s > EV_MAX then return '-' end return s end
local function has(fl, c) return fl ~= nil and string.find(fl, c, 1, true) ~= nil end
local function finished(st) return st ~= 'queued' and st ~= 'running' end

-- Byte order of two members (what a zset's member order is), free of the
-- server's LC_COLLATE that Lua's string '<' follows.
local function mless(a, b)
	local n = math.min(#a, #b)
	for i = 1, n do
		local x, y = string.byte(a, i), string.byte(b, i)
		if x ~= y then return x < y end
	end
	return #a < #b
end

-- job(key): the fields of P:j:KEY that the functions use, nil if no job.
local F = { 't', 'tg', 'o', 'd', 'st', 'att', 'm', 'fl', 'wd', 'fd', 'fa', 'ls',
	'np', 'pb', 'id', 'b', 'pr', 'to', 'sub', 'ow', 'src', 'due', 'rt', 'bo', 'fc' }
local function job_of(v)
	if not v[5] then return nil end
	local j = {}
	for i, f in ipairs(F) do
		if v[i] then j[f] = v[i] end
	end
	j.tg = j.tg or ''
	j.wd = j.wd or ''
	return j
end

local function job(key)
	return job_of(redis.call('HMGET', kj(key), unpack(F)))
end

-- job_p(key): job(key), but 'bad' if P:j:KEY is not a hash (no raise).
local function job_p(key)
	local v = redis.pcall('HMGET', kj(key), unpack(F))
	if type(v) == 'table' and v.err then return 'bad' end
	return job_of(v)
end

-- take_job(key): the job as pass 1 read it (chk_job), once; after that,
-- or for a key pass 1 did not read, as it is now.
local function take_job(key)
	local j = jcache[key]
	jcache[key] = nil
	if j == nil then return job(key) end
	if j == false then return nil end
	return j
end

-- chk_job(key): pass 1 for every key that writes about this job may touch.
local function chk_job(key)
	local jk = kj(key)
	-- The read pass 2 needs anyway is the type check: a key of another
	-- type answers it with an error (then TYPE names what it holds).
	-- (P:p:KEY is checked where it is written: partial.)
	local v = redis.pcall('HMGET', jk, unpack(F))
	if type(v) == 'table' and v.err then
		fail('WRONGTYPE jobfs: ' .. jk .. ' holds a ' .. redis.call('TYPE', jk)['ok'] ..
			', expected hash')
	end
	seen[jk .. '\0hash'] = true
	jcache[key] = job_of(v) or false
	local T, tg, o, d = v[1], v[2], v[3], v[4]
	if T then
		chk(kq(T, tg or ''), 'zset')
		chk(ktg(T), 'set')
		chk(kt(T), 'hash')
		chk(kidle(T), 'zset')
	end
	if o then chk(P .. ':own:' .. o, 'set') end
	if d then chk(P .. ':run:' .. d, 'set') end
end

local function chk_glob()
	chk(P .. ':dl', 'zset')
	chk(P .. ':done', 'zset')
	chk(P .. ':all', 'zset')
	chk(P .. ':stats', 'hash')
	chk(P .. ':types', 'set')
	chk(P .. ':dead', 'zset')
	chk(P .. ':dly', 'zset')
end

-- Pass 2 helpers: none of these may raise.

-- publish_ev: msg to the job's origin and each watching daemon, once each,
-- skipping SELF.
local function publish_ev(o, wd, msg)
	local sent = {}
	if SELF then sent[SELF] = true end
	local function one(w)
		if w and w ~= '' and not sent[w] then
			sent[w] = true
			redis.call('PUBLISH', P .. ':d:' .. w, msg)
		end
	end
	one(o)
	for w in string.gmatch(wd or '', '[^,]+') do one(w) end
end

-- wake(T, k, all): tell up to k idle daemons of T (longest idle first,
-- popped from P:idle:T) that T has queued jobs; all: every idle daemon,
-- none popped (a targeted job: only the daemon of its worker can take it).
local function wake(T, k, all)
	local idle = kidle(T)
	local msg = 'n ' .. T
	if all then
		local ds = redis.call('ZRANGE', idle, 0, -1)
		for _, d in ipairs(ds) do
			if d ~= SELF then redis.call('PUBLISH', P .. ':d:' .. d, msg) end
		end
		return
	end
	local sent, back = 0, nil
	while sent < k do
		local r = redis.call('ZPOPMIN', idle)
		if #r == 0 then break end
		if r[1] == SELF then
			back = r[2]
		else
			redis.call('PUBLISH', P .. ':d:' .. r[1], msg)
			sent = sent + 1
		end
	end
	if back then redis.call('ZADD', idle, back, SELF) end
end

-- finish: the writes common to every end (the job has already left its
-- queue or its lease): state, result, finish time, deadline, retention set,
-- counters, the `f` event.  fd, fa: who finished it (complete, requeue).
local function finish(key, j, state, r, fd, fa)
	local jk = kj(key)
	if fd then
		redis.call('HSET', jk, 'st', state, 'r', r, 'fin', NOWS, 'fd', fd, 'fa', fa)
	else
		redis.call('HSET', jk, 'st', state, 'r', r, 'fin', NOWS)
	end
	if j.o and has(j.fl, 'o') then redis.call('SREM', P .. ':own:' .. j.o, key) end
	if j.to and j.to ~= '0' then redis.call('ZREM', P .. ':dl', key) end
	redis.call('ZADD', P .. ':done', NOW, key)
	if state == 'failed' then redis.call('ZADD', P .. ':dead', NOW, key) end
	incr(kt(j.t), state, 1)
	incr(kt(j.t), 'kept', 1)
	incr(P .. ':stats', state, 1)
	publish_ev(j.o, j.wd, 'f ' .. state .. ' ' .. kl(key) .. ' ' .. ev(r))
end

-- end_job: a queued or running job ends as `why` (cancelled, timeout,
-- failed); a running one's daemon is told to free its worker (`c`).
local function end_job(key, j, why)
	local tk = kt(j.t)
	if j.st == 'queued' and j.due then
		-- delayed (or waiting out a retry's backoff): in P:dly, no queue
		redis.call('ZREM', P .. ':dly', key)
		redis.call('HDEL', kj(key), 'due')
		incr(tk, 'delayed', -1)
	elseif j.st == 'queued' then
		local q = kq(j.t, j.tg)
		redis.call('ZREM', q, j.m)
		if j.tg ~= '' and redis.call('ZCARD', q) == 0 then
			redis.call('SREM', ktg(j.t), j.tg)
		end
		incr(tk, 'queued', -1)
	else
		if j.d then
			redis.call('SREM', P .. ':run:' .. j.d, key)
			redis.call('PUBLISH', P .. ':d:' .. j.d, 'c ' .. (j.att or '0') .. ' ' .. kl(key))
		end
		incr(tk, 'running', -1)
		redis.call('HDEL', kj(key), 'd')
	end
	finish(key, j, why, '')
end

-- requeue_job: a running job leaves its lease (j.d); lost counts a loss,
-- and the 4th loss fails it.  Returns 'ok' or 'failed'.
local function requeue_job(key, j, lost)
	local jk, tk = kj(key), kt(j.t)
	redis.call('SREM', P .. ':run:' .. j.d, key)
	redis.call('HDEL', jk, 'd')
	if lost then
		local ls = redis.call('HINCRBY', jk, 'ls', 1)
		if ls > 3 then
			incr(tk, 'running', -1)
			finish(key, j, 'failed', '{"error":"lost","losses":' .. string.format('%d', ls) .. '}',
				j.d, j.att)
			redis.call('HSET', jk, 'wd', '')
			return 'failed'
		end
	end
	redis.call('HSET', jk, 'st', 'queued')
	redis.call('ZADD', kq(j.t, j.tg), 0, j.m)
	if j.tg ~= '' then redis.call('SADD', ktg(j.t), j.tg) end
	incr(tk, 'running', -1)
	incr(tk, 'queued', 1)
	if lost then
		incr(tk, 'requeued', 1)
		incr(P .. ':stats', 'requeued', 1)
	end
	wake(j.t, 1, j.tg ~= '')
	return 'ok'
end

-- drop: the keys of a finished job go (forget's cleanup, no event).
local function drop(key, j)
	redis.call('DEL', kj(key), kp(key))
	redis.call('ZREM', P .. ':all', key)
	redis.call('ZREM', P .. ':done', key)
	redis.call('ZREM', P .. ':dl', key)
	redis.call('ZREM', P .. ':dead', key)
	incr(kt(j.t), 'kept', -1)
end

-- add_type: T is listed in P:types; a new type is announced.
local function add_type(T)
	if redis.call('SADD', P .. ':types', T) == 1 then
		redis.call('PUBLISH', P .. ':x', 't+ ' .. T)
	end
end

-- The lease check of complete, partial and requeue.
local function leased(j, att)
	return j ~= nil and j.st == 'running' and j.d == N and j.att == att
end

-------------------------------------------------------------------------------
-- The functions.

-- jobfs_hello P N info lease_ms [epoch] -> {N, fresh, epoch}
-- epoch: P:epoch as the caller last saw it ('' or absent: it saw none).
-- The first hello on a Redis without P:epoch writes it (Redis's clock in
-- microseconds): it names this set of the cluster's data.  A caller that
-- saw another one lost its jobs with the data (FLUSHALL, or Redis
-- restarted without persistence): it gets a new number, as a daemon taken
-- for dead does (its old one may already be another daemon's), and tells
-- by the epoch answered.
local function f_hello(args)
	local info, lease, seen_epoch = args[3], args[4], args[5] or ''
	if not info or not lease then fail('ERR jobfs: hello takes info lease_ms [epoch]') end
	lease = int_arg(lease, 'lease_ms')
	if lease <= 0 then fail('ERR jobfs: lease_ms must be positive') end
	chk(P .. ':daemons', 'hash')
	chk(P .. ':epoch', 'string')
	local nd = chk_counter(P .. ':nd')
	local epoch = redis.call('GET', P .. ':epoch')
	local new_epoch = not epoch
	if new_epoch then
		local t = redis.call('TIME')
		epoch = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
	end
	local fresh = 0
	if N == '0' or (seen_epoch ~= '' and seen_epoch ~= epoch) then
		fresh = 1
	else
		local cur = redis.call('HGET', P .. ':daemons', N)
		if not cur or cur == 'dead' then fresh = 1 end
	end
	local id = N
	if fresh == 1 then id = string.format('%d', nd + 1) end
	chk(P .. ':hb:' .. id, 'string')
	-- pass 2
	if new_epoch then redis.call('SET', P .. ':epoch', epoch) end
	if fresh == 1 then
		id = string.format('%d', redis.call('INCR', P .. ':nd'))
	end
	redis.call('HSET', P .. ':daemons', id, info)
	redis.call('SET', P .. ':hb:' .. id, info, 'PX', lease)
	return { tonumber(id), fresh, epoch }
end

-- jobfs_submit P N, groups of 11:
--   key prio16 type idjson body prio flags timeout_ms target src owner
local function f_submit(args)
	local ng = groups(args, 3, 11, 'submit')
	chk_glob()
	chk_counter(P .. ':seq')
	chk(P .. ':own:' .. N, 'set')
	for g = 0, ng - 1 do
		local b = 3 + g * 11
		local key, p16, T, to, tg = args[b], args[b + 1], args[b + 2], args[b + 7], args[b + 8]
		if key == '' then fail('ERR jobfs: submit: empty key') end
		if T == '' then fail('ERR jobfs: submit: empty type') end
		if not string.match(p16, '^[0-9a-f]+$') or #p16 ~= 16 then
			fail('ERR jobfs: submit: prio16 is not 16 lowercase hex digits: ' .. p16)
		end
		int_arg(to, 'timeout_ms')
		chk_job(key)
		chk(kq(T, tg), 'zset')
		chk(ktg(T), 'set')
		chk(kt(T), 'hash')
		chk(kidle(T), 'zset')
	end
	-- pass 2
	local out, order, woken, wall = {}, {}, {}, {}
	for g = 0, ng - 1 do
		local b = 3 + g * 11
		local key, p16, T, idj, body = args[b], args[b + 1], args[b + 2], args[b + 3], args[b + 4]
		local pr, fl, to, tg, src, ow = args[b + 5], args[b + 6], args[b + 7], args[b + 8],
			args[b + 9], args[b + 10]
		local j = take_job(key)
		local verdict
		if j then
			if j.src == src then
				verdict = 'ok'
			elseif not finished(j.st) or (j.ow or '') ~= ow then
				-- unfinished, or another owner's (--auth): not taken over
				verdict = 'exists'
			else
				drop(key, j)
			end
		end
		if not verdict then
			local seq = redis.call('INCR', P .. ':seq')
			local m = p16 .. string.format('%016x', seq) .. key
			local jk = kj(key)
			if idj ~= '' then
				redis.call('HSET', jk, 't', T, 'b', body, 'pr', pr, 'm', m, 'st', 'queued',
					'fl', fl, 'to', to, 'tg', tg, 'o', N, 'src', src, 'ow', ow, 'sub', NOWS,
					'ls', 0, 'att', 0, 'np', 0, 'pb', 0, 'id', idj)
			else
				redis.call('HSET', jk, 't', T, 'b', body, 'pr', pr, 'm', m, 'st', 'queued',
					'fl', fl, 'to', to, 'tg', tg, 'o', N, 'src', src, 'ow', ow, 'sub', NOWS,
					'ls', 0, 'att', 0, 'np', 0, 'pb', 0)
			end
			redis.call('ZADD', kq(T, tg), 0, m)
			if tg ~= '' then redis.call('SADD', ktg(T), tg) end
			redis.call('ZADD', P .. ':all', seq, key)
			local tms = tonumber(to)
			if tms > 0 then redis.call('ZADD', P .. ':dl', NOW + tms, key) end
			if has(fl, 'o') then redis.call('SADD', P .. ':own:' .. N, key) end
			if not woken[T] then add_type(T) end   -- (once a call per type)
			incr(kt(T), 'queued', 1)
			incr(kt(T), 'submitted', 1)
			incr(P .. ':stats', 'submitted', 1)
			if not woken[T] then
				woken[T] = 0
				order[#order + 1] = T
			end
			woken[T] = woken[T] + 1
			if tg ~= '' then wall[T] = true end
			verdict = 'ok'
		end
		out[#out + 1] = verdict
	end
	for _, T in ipairs(order) do wake(T, woken[T], wall[T]) end
	return out
end

-- jobfs_dispatch P N T, then pairs wname slots -> groups of 14:
--   widx key att idjson body prio flags timeout_ms target origin sub_ms losses owner "0"
local function f_dispatch(args)
	local T = args[3]
	if not T or T == '' then fail('ERR jobfs: dispatch: no type') end
	local np = groups(args, 4, 2, 'dispatch')
	local q = kq(T, '')
	local total = 0
	chk(q, 'zset')
	chk(ktg(T), 'set')
	chk(kt(T), 'hash')
	chk(kidle(T), 'zset')
	chk(P .. ':run:' .. N, 'set')
	for i = 0, np - 1 do
		local w, s = args[4 + 2 * i], args[5 + 2 * i]
		s = int_arg(s, 'slots')
		if s < 0 then fail('ERR jobfs: dispatch: negative slots') end
		total = total + s
		chk(kq(T, w), 'zset')
	end
	-- Workers with jobs targeted at them (P:tg:T): their queue is merged
	-- with the type's by member; the others take from the type's queue
	-- with one read and one removal per worker.
	-- The type's cluster-wide settings (P:cfg:T, jobfs_config): paused,
	-- nothing is given; a limit caps the jobs running across daemons.
	chk(P .. ':cfg:' .. T, 'hash')
	local cfg = redis.call('HMGET', P .. ':cfg:' .. T, 'paused', 'limit')
	if cfg[1] == '1' then
		redis.call('ZREM', kidle(T), N)
		return {}
	end
	local lim = tonumber(cfg[2] or '0') or 0
	if lim > 0 then
		local left = lim - (tonumber(redis.call('HGET', kt(T), 'running') or '0') or 0)
		if left < total then total = left > 0 and left or 0 end
	end
	local targeted = {}
	for _, w in ipairs(redis.call('SMEMBERS', ktg(T))) do targeted[w] = true end
	-- pass 2.  A queue entry whose job is gone, not queued, of another
	-- entry, or not a hash (planted by hand) is dropped as it is met.
	local out, given = {}, 0
	local tk = kt(T)
	local runk = P .. ':run:' .. N
	-- give: the job of member m (already out of its queue) to worker w,
	-- pair i; false if m is not a queued job's entry.
	local function give(i, w, m)
		local key = string.sub(m, 33)
		local j = job_p(key)
		if j == 'bad' or not j or j.st ~= 'queued' or j.m ~= m then return false end
		local jk = kj(key)
		local att = string.format('%d', redis.call('HINCRBY', jk, 'att', 1))
		local wk = w .. '@' .. N
		redis.call('HSET', jk, 'st', 'running', 'd', N, 'wk', wk, 'sta', NOWS)
		redis.call('SADD', runk, key)
		incr(tk, 'queued', -1)
		incr(tk, 'running', 1)
		if has(j.fl, 'n') or j.wd ~= '' then
			publish_ev(j.o, j.wd, 'r ' .. kl(key) .. ' ' .. wk)
		end
		local idj = j.id or ''
		if has(j.fl, 'i') then idj = '' end
		local rec = { string.format('%d', i + 1), key, att, idj, j.b or '', j.pr or '0',
			j.fl or '', j.to or '0', j.tg, j.o or '', j.sub or '0', j.ls or '0',
			j.ow or '', '0' }
		for _, v in ipairs(rec) do out[#out + 1] = v end
		given = given + 1
		return true
	end
	for i = 0, np - 1 do
		local w, s = args[4 + 2 * i], tonumber(args[5 + 2 * i])
		local n = 0
		if lim > 0 and s > total - given then s = total - given end
		if targeted[w] then
			local qt = kq(T, w)
			while n < s do
				local a = redis.call('ZRANGE', q, 0, 0)[1]
				local b = redis.call('ZRANGE', qt, 0, 0)[1]
				local m, from
				if a and (not b or mless(a, b)) then
					m, from = a, q
				elseif b then
					m, from = b, qt
				else
					break
				end
				redis.call('ZREM', from, m)
				if from == qt and redis.call('ZCARD', qt) == 0 then
					redis.call('SREM', ktg(T), w)
				end
				if give(i, w, m) then n = n + 1 end
			end
		else
			while n < s do
				local ms = redis.call('ZRANGE', q, 0, s - n - 1)
				if #ms == 0 then break end
				redis.call('ZREM', q, unpack(ms))
				for _, m in ipairs(ms) do
					if give(i, w, m) then n = n + 1 end
				end
			end
		end
	end
	if given < total then
		redis.call('ZADD', kidle(T), NOW, N)
	else
		redis.call('ZREM', kidle(T), N)
	end
	if redis.call('ZCARD', q) > 0 then wake(T, 1, false) end
	return out
end

-- jobfs_complete P N, groups of 4: key att state result -> ok | late
local function f_complete(args)
	local ng = groups(args, 3, 4, 'complete')
	chk_glob()
	chk(P .. ':run:' .. N, 'set')
	for g = 0, ng - 1 do
		local b = 3 + g * 4
		int_arg(args[b + 1], 'att')
		local st = args[b + 2]
		if st ~= 'done' and st ~= 'failed' then
			fail('ERR jobfs: complete: state must be done or failed: ' .. st)
		end
		chk_job(args[b])
	end
	-- pass 2
	local out = {}
	for g = 0, ng - 1 do
		local b = 3 + g * 4
		local key, att, st, r = args[b], string.format('%d', tonumber(args[b + 1])),
			args[b + 2], args[b + 3]
		local j = take_job(key)
		if leased(j, att) then
			redis.call('HDEL', kj(key), 'd')
			redis.call('SREM', P .. ':run:' .. N, key)
			incr(kt(j.t), 'running', -1)
			finish(key, j, st, r, N, att)
			redis.call('HSET', kj(key), 'wd', '')
			out[#out + 1] = 'ok'
		elseif j and j.st == st and j.fd == N and j.fa == att then
			out[#out + 1] = 'ok'
		else
			out[#out + 1] = 'late'
		end
	end
	return out
end

-- jobfs_partial P N, groups of 4: key att idx body -> ok | late | dup
local function f_partial(args)
	local ng = groups(args, 3, 4, 'partial')
	chk_glob()
	for g = 0, ng - 1 do
		local b = 3 + g * 4
		int_arg(args[b + 1], 'att')
		int_arg(args[b + 2], 'idx')
		chk(kp(args[b]), 'list')
		chk_job(args[b])
	end
	-- pass 2
	local out = {}
	for g = 0, ng - 1 do
		local b = 3 + g * 4
		local key, att, idx, body = args[b], string.format('%d', tonumber(args[b + 1])),
			tonumber(args[b + 2]), args[b + 3]
		local j = take_job(key)
		if not leased(j, att) then
			out[#out + 1] = 'late'
		elseif idx <= tonumber(j.np or '0') then
			out[#out + 1] = 'dup'
		elseif tonumber(j.pb or '0') + #body > PB_MAX then
			out[#out + 1] = 'ok'
		else
			redis.call('RPUSH', kp(key), body)
			redis.call('HINCRBY', kj(key), 'np', 1)
			redis.call('HINCRBY', kj(key), 'pb', #body)
			incr(P .. ':stats', 'partials', 1)
			publish_ev(j.o, j.wd, 'p ' .. string.format('%d', idx) .. ' ' .. kl(key) .. ' ' .. ev(body))
			out[#out + 1] = 'ok'
		end
	end
	return out
end

-- jobfs_requeue P N, groups of 3: key att lost -> ok | failed | late
local function f_requeue(args)
	local ng = groups(args, 3, 3, 'requeue')
	chk_glob()
	chk(P .. ':run:' .. N, 'set')
	for g = 0, ng - 1 do
		local b = 3 + g * 3
		int_arg(args[b + 1], 'att')
		chk_job(args[b])
	end
	-- pass 2
	local out = {}
	for g = 0, ng - 1 do
		local b = 3 + g * 3
		local key, att, lost = args[b], string.format('%d', tonumber(args[b + 1])), args[b + 2]
		local j = take_job(key)
		if leased(j, att) then
			out[#out + 1] = requeue_job(key, j, lost == '1')
		else
			out[#out + 1] = 'late'
		end
	end
	return out
end

-- jobfs_end P N, groups of 3: key why if_queued -> ok | running | unknown | finished
local function f_end(args)
	local ng = groups(args, 3, 3, 'end')
	chk_glob()
	for g = 0, ng - 1 do
		local b = 3 + g * 3
		local why = args[b + 1]
		if why ~= 'cancelled' and why ~= 'timeout' and why ~= 'failed' then
			fail('ERR jobfs: end: why must be cancelled, timeout or failed: ' .. why)
		end
		chk_job(args[b])
	end
	-- pass 2
	local out = {}
	for g = 0, ng - 1 do
		local b = 3 + g * 3
		local key, why, ifq = args[b], args[b + 1], args[b + 2]
		local j = take_job(key)
		if not j then
			out[#out + 1] = 'unknown'
		elseif finished(j.st) then
			out[#out + 1] = 'finished'
		elseif ifq == '1' and j.st == 'running' then
			out[#out + 1] = 'running'
		else
			end_job(key, j, why)
			out[#out + 1] = 'ok'
		end
	end
	return out
end

-- forget: end an unfinished job as cancelled, tell its origin and watchers
-- (`g`), drop its keys.  With the job read before.
local function forget_job(key, j)
	if not finished(j.st) then
		end_job(key, j, 'cancelled')
	end
	publish_ev(j.o, j.wd, 'g ' .. kl(key))
	drop(key, j)
end

-- jobfs_forget P N key -> ok | unknown
local function f_forget(args)
	local key = args[3]
	if not key then fail('ERR jobfs: forget takes a key') end
	chk_glob()
	chk_job(key)
	chk(kp(key), 'list')
	-- pass 2
	local j = take_job(key)
	if not j then return 'unknown' end
	forget_job(key, j)
	return 'ok'
end

-- jobfs_watch P N key -> nil | {field, value, ..., NUL 'partials', p1, p2, ...}
local function f_watch(args)
	local key = args[3]
	if not key then fail('ERR jobfs: watch takes a key') end
	chk(kj(key), 'hash')
	chk(kp(key), 'list')
	local h = redis.call('HGETALL', kj(key))
	if #h == 0 then return false end
	local out = h
	out[#out + 1] = string.char(0) .. 'partials'
	for _, p in ipairs(redis.call('LRANGE', kp(key), 0, -1)) do out[#out + 1] = p end
	-- pass 2
	local v = redis.call('HMGET', kj(key), 'st', 'wd')
	if v[1] and not finished(v[1]) then
		local wd = v[2] or ''
		if not string.find(wd, ',' .. N .. ',', 1, true) then
			if wd == '' then wd = ',' end
			redis.call('HSET', kj(key), 'wd', wd .. N .. ',')
		end
	end
	return out
end

-- jobfs_worker P N T delta [set] -> new workers count of T
-- With 'set', delta is daemon N's whole count of workers of T (what it
-- says when it registers again after a reconnect): the counters move by
-- the difference from what Redis held for N.
local function f_worker(args)
	local T, delta, set = args[3], args[4], args[5]
	if not T or T == '' or not delta or (set and set ~= 'set') then
		fail('ERR jobfs: worker takes T delta [set]')
	end
	delta = int_arg(delta, 'delta')
	chk(kt(T), 'hash')
	chk(P .. ':wn:' .. N, 'hash')
	chk(P .. ':types', 'set')
	local count
	if set then
		count = delta
		if count < 0 then fail('ERR jobfs: worker: a negative count') end
		local old = redis.call('HGET', P .. ':wn:' .. N, T)
		if old and not string.match(old, '^%-?%d+$') then
			fail('ERR jobfs: ' .. P .. ':wn:' .. N .. ' holds no integer for ' .. T)
		end
		delta = count - tonumber(old or '0')
	end
	-- pass 2 (a count of 0 that Redis already holds writes nothing)
	if set and delta == 0 and count == 0 then
		return tonumber(redis.call('HGET', kt(T), 'workers') or '0')
	end
	local n = redis.call('HINCRBY', kt(T), 'workers', delta)
	if redis.call('HINCRBY', P .. ':wn:' .. N, T, delta) == 0 then
		redis.call('HDEL', P .. ':wn:' .. N, T)
	end
	if not set or count > 0 then add_type(T) end
	return n
end

-- jobfs_leases P N -> key att key att ... (P:run:N)
local function f_leases(args)
	chk(P .. ':run:' .. N, 'set')
	local out = {}
	for _, key in ipairs(redis.call('SMEMBERS', P .. ':run:' .. N)) do
		chk(kj(key), 'hash')
		out[#out + 1] = key
		out[#out + 1] = redis.call('HGET', kj(key), 'att') or '0'
	end
	return out
end

-- jobfs_pin P N T on|off -> ok
local function f_pin(args)
	local T, on = args[3], args[4]
	if not T or T == '' or (on ~= 'on' and on ~= 'off') then
		fail('ERR jobfs: pin takes T on|off')
	end
	chk(kt(T), 'hash')
	chk(P .. ':types', 'set')
	-- pass 2
	redis.call('HSET', kt(T), 'pinned', on == 'on' and '1' or '0')
	add_type(T)
	return 'ok'
end

-- jobfs_reap P N keep_ms keep_max
--   -> {daemons, requeued, failed, cancelled, timedout, forgotten, more}
local function f_reap(args)
	local keep_ms = int_arg(args[3], 'keep_ms')
	local keep_max = int_arg(args[4], 'keep_max')
	if keep_ms < 0 or keep_max < 0 then fail('ERR jobfs: reap: negative keep_ms or keep_max') end
	local more = 0
	chk_glob()
	chk(P .. ':daemons', 'hash')
	local types = redis.call('SMEMBERS', P .. ':types')
	for _, T in ipairs(types) do
		chk(kt(T), 'hash')
		chk(kidle(T), 'zset')
	end
	-- 1. daemons whose heartbeat expired
	local plan = {}
	local dinfo = redis.call('HGETALL', P .. ':daemons')
	for i = 1, #dinfo, 2 do
		local D = dinfo[i]
		if D ~= N and redis.call('EXISTS', P .. ':hb:' .. D) == 0 then
			local run, own, wn = P .. ':run:' .. D, P .. ':own:' .. D, P .. ':wn:' .. D
			chk(run, 'set')
			chk(own, 'set')
			chk(wn, 'hash')
			local runs = redis.call('SRANDMEMBER', run, DEAD_RUN_MAX)
			local owns = redis.call('SRANDMEMBER', own, DEAD_OWN_MAX)
			if redis.call('SCARD', run) > DEAD_RUN_MAX or redis.call('SCARD', own) > DEAD_OWN_MAX then
				more = 1
			end
			for _, k in ipairs(runs) do chk_job(k); chk(kp(k), 'list') end
			for _, k in ipairs(owns) do chk_job(k); chk(kp(k), 'list') end
			local wns = redis.call('HGETALL', wn)
			for w = 1, #wns, 2 do
				chk(kt(wns[w]), 'hash')
				chk(kidle(wns[w]), 'zset')
			end
			plan[#plan + 1] = { D = D, runs = runs, owns = owns, wn = wns }
		end
	end
	-- 2. deadlines due
	local due = redis.call('ZRANGEBYSCORE', P .. ':dl', '-inf', NOW, 'LIMIT', 0, TIMEOUT_MAX)
	for _, k in ipairs(due) do chk_job(k); chk(kp(k), 'list') end
	if #due == TIMEOUT_MAX and redis.call('ZCOUNT', P .. ':dl', '-inf', NOW) > TIMEOUT_MAX then
		more = 1
	end
	-- 3. retention.  What steps 1 and 2 finish is checked above.  They add
	-- to P:done with score NOW, never older than NOW - keep_ms, so step 3
	-- forgets at most max(#older, ZCARD + #finishing - keep_max) members,
	-- and those it takes from P:done as it is now are among its first that
	-- many (members only go in before them).
	local finishing = #due
	for _, p in ipairs(plan) do finishing = finishing + #p.runs + #p.owns end
	local n1 = redis.call('ZCOUNT', P .. ':done', '-inf', '(' .. string.format('%d', NOW - keep_ms))
	local over1 = redis.call('ZCARD', P .. ':done') + finishing - keep_max
	if over1 > n1 then n1 = over1 end
	if n1 > RETAIN_MAX then n1 = RETAIN_MAX end
	if n1 > 0 then
		for _, k in ipairs(redis.call('ZRANGE', P .. ':done', 0, n1 - 1)) do
			chk_job(k)
			chk(kp(k), 'list')
		end
	end

	-- pass 2 (SELF is nil: events and wake-ups skip nobody, see the top)
	local c_d, c_rq, c_f, c_c, c_t, c_g = 0, 0, 0, 0, 0, 0
	for _, p in ipairs(plan) do
		local D = p.D
		local run, own, wn = P .. ':run:' .. D, P .. ':own:' .. D, P .. ':wn:' .. D
		redis.call('HSET', P .. ':daemons', D, 'dead')
		for _, k in ipairs(p.runs) do
			local j = job(k)
			if j and j.st == 'running' and j.d == D then
				if requeue_job(k, j, true) == 'ok' then c_rq = c_rq + 1 else c_f = c_f + 1 end
			else
				redis.call('SREM', run, k)
			end
		end
		for _, k in ipairs(p.owns) do
			local j = job(k)
			if j and j.st == 'queued' and j.o == D then
				end_job(k, j, 'cancelled')
				c_c = c_c + 1
			end
			redis.call('SREM', own, k)
		end
		for w = 1, #p.wn, 2 do
			local T, cnt = p.wn[w], tonumber(p.wn[w + 1]) or 0
			redis.call('HINCRBY', kt(T), 'workers', -cnt)
			redis.call('ZREM', kidle(T), D)
		end
		redis.call('DEL', wn)
		for _, T in ipairs(types) do redis.call('ZREM', kidle(T), D) end
		if redis.call('SCARD', run) == 0 and redis.call('SCARD', own) == 0 then
			redis.call('DEL', run, own)
			redis.call('HDEL', P .. ':daemons', D)
			redis.call('PUBLISH', P .. ':x', 'd- ' .. D)
		end
		c_d = c_d + 1
	end
	for _, k in ipairs(due) do
		local j = job(k)
		if j and not finished(j.st) then
			end_job(k, j, 'timeout')
			c_t = c_t + 1
		else
			redis.call('ZREM', P .. ':dl', k)
		end
	end
	local n = redis.call('ZCOUNT', P .. ':done', '-inf', '(' .. string.format('%d', NOW - keep_ms))
	local over = redis.call('ZCARD', P .. ':done') - keep_max
	if over > n then n = over end
	if n > RETAIN_MAX then
		n = RETAIN_MAX
		more = 1
	end
	if n > 0 then
		for _, k in ipairs(redis.call('ZRANGE', P .. ':done', 0, n - 1)) do
			local j = job(k)
			if j and finished(j.st) then
				forget_job(k, j)
				c_g = c_g + 1
			else
				redis.call('ZREM', P .. ':done', k)
				if not j then redis.call('ZREM', P .. ':all', k) end
			end
		end
	end
	-- 4. types with nothing queued, running, working or kept, not pinned
	local gone = 0
	for _, T in ipairs(types) do
		flush_incr()   -- (the counters as steps 1-3 left them)
		local v = redis.call('HMGET', kt(T), 'queued', 'running', 'workers', 'kept', 'pinned')
		local empty = true
		for i = 1, 4 do
			if v[i] and tonumber(v[i]) ~= 0 then empty = false end
		end
		if empty and v[5] ~= '1' then
			if gone == TYPES_MAX then
				more = 1
				break
			end
			redis.call('SREM', P .. ':types', T)
			redis.call('DEL', kt(T))
			redis.call('PUBLISH', P .. ':x', 't- ' .. T)
			gone = gone + 1
		end
	end
	return { c_d, c_rq, c_f, c_c, c_t, c_g, more }
end

-------------------------------------------------------------------------------
-- Registration: each callback runs begin(), then the function under pcall
-- so that a pass-1 failure becomes its error reply; anything else raised is
-- passed on unchanged.

local function wrap(fn, skip_self)
	return function(keys, args)
		if #args < 2 then
			return redis.error_reply('ERR jobfs: call as FCALL <name> 0 P N ...')
		end
		begin(args, skip_self)
		local ok, res = pcall(fn, args)
		if ok then
			flush_incr()
			return res
		end
		if type(res) == 'table' and res.jobfs then return redis.error_reply(res.jobfs) end
		error(res, 0)
	end
end

-- Reads for the tree on every host (read-only: no check pass needed; a key
-- of the wrong type makes Redis answer an error, and nothing is written).

-- jobfs_list P N what arg max -> keys
--   all:   every job, in submission order (P:all)
--   queue: type arg's queued jobs in dispatch order, targeted ones merged in
local function f_list(args)
	local what, arg = args[3], args[4]
	local max = int_arg(args[5], 'max')
	if what == 'all' then
		return redis.call('ZRANGE', P .. ':all', 0, max - 1)
	end
	if what ~= 'queue' or not arg then fail('ERR jobfs: list all|queue T max') end
	local ms = redis.call('ZRANGE', kq(arg, ''), 0, max - 1)
	for _, tg in ipairs(redis.call('SMEMBERS', ktg(arg))) do
		for _, m in ipairs(redis.call('ZRANGE', kq(arg, tg), 0, max - 1)) do
			ms[#ms + 1] = m
		end
	end
	table.sort(ms)
	local out = {}
	for i = 1, math.min(#ms, max) do out[i] = string.sub(ms[i], 33) end
	return out
end

-- jobfs_workers_put P N T text: daemon N's worker lines for T (types/T/workers);
-- an empty text removes them.
local function f_workers_put(args)
	local T, text = args[3], args[4]
	if not T or not text then fail('ERR jobfs: workers_put T text') end
	chk(P .. ':wk:' .. T, 'hash')
	if text == '' then
		redis.call('HDEL', P .. ':wk:' .. T, N)
	else
		redis.call('HSET', P .. ':wk:' .. T, N, text)
	end
	return 'ok'
end

-- jobfs_workers P N T -> the worker lines of T's live daemons (a dead
-- daemon's, whose heartbeat expired, are dropped)
local function f_workers(args)
	local T = args[3]
	if not T then fail('ERR jobfs: workers T') end
	chk(P .. ':wk:' .. T, 'hash')
	local k = P .. ':wk:' .. T
	local h = redis.call('HGETALL', k)
	local out = {}
	for i = 1, #h, 2 do
		if redis.call('EXISTS', P .. ':hb:' .. h[i]) == 1 then
			out[#out + 1] = h[i + 1]
		else
			redis.call('HDEL', k, h[i])
		end
	end
	return out
end

-------------------------------------------------------------------------------
-- The job lifecycle across daemons: retries with backoff, delays, the dead
-- set, kick, and a type's settings (pause, limit, default retries).
--
-- A delayed job (delay, at, or a retry waiting out its backoff) is
-- st=queued with its due time in `due` and its key in P:dly (score: due
-- ms), in no queue; jobfs_due moves it into its queue at its place (its
-- member `m`).  Failed jobs are in P:dead (score: finish ms) as well as in
-- P:done.  A type's settings are P:cfg:T (paused, limit, retries, backoff);
-- a change is published on P:x as `k T paused limit retries backoff`, a new
-- earliest due time as `w MS`.

local BACKOFF_MS = 1000                 -- LIFE_BACKOFF_MS
local BACKOFF_MAX_MS = 24 * 3600 * 1000 -- LIFE_BACKOFF_MAX_MS

local function kcfg(T) return P .. ':cfg:' .. T end

-- due_at(key, due): the job (queued, out of its queue already) waits in
-- P:dly until due; every daemon hears the time, to arm its timer.
local function due_at(key, due)
	local ds = string.format('%d', due)
	redis.call('ZADD', P .. ':dly', due, key)
	redis.call('HSET', kj(key), 'due', ds)
	redis.call('PUBLISH', P .. ':x', 'w ' .. ds)
end

-- backoff_wait(j, n): the wait after the n-th failed attempt, as one
-- daemon computes it (life.c): min(B * 2^(n-1), max), then in [D/2, D].
local function backoff_wait(j, cfg_bo, n)
	local base = tonumber(j.bo or '0') or 0
	if base <= 0 then base = tonumber(cfg_bo or '0') or 0 end
	if base <= 0 then base = BACKOFF_MS end
	local d = base * 2 ^ (n - 1)
	if d > BACKOFF_MAX_MS then d = BACKOFF_MAX_MS end
	return math.floor(d / 2 + math.random() * d / 2)
end

-- jobfs_submit_life P N, groups of 15: the 11 of jobfs_submit, then
--   delay_ms at_ms retries backoff_ms
-- (retries -1: the type's default; at_ms: Redis clock ms, 0 for none) ->
-- as jobfs_submit.  A job given a delay or a time in the future waits in
-- P:dly rather than in its queue.
local function f_submit_life(args)
	local ng = groups(args, 3, 15, 'submit_life')
	local sub, life, before = { args[1], args[2] }, {}, {}
	chk(P .. ':dly', 'zset')
	for g = 0, ng - 1 do
		local b = 3 + g * 15
		for i = 0, 10 do sub[#sub + 1] = args[b + i] end
		local l = {
			key = args[b], src = args[b + 9],
			delay = int_arg(args[b + 11], 'delay_ms'),
			at = int_arg(args[b + 12], 'at_ms'),
			rt = int_arg(args[b + 13], 'retries'),
			bo = int_arg(args[b + 14], 'backoff_ms'),
		}
		life[#life + 1] = l
	end
	-- (jobfs_submit checks every other key before it writes)
	for _, l in ipairs(life) do
		local v = redis.pcall('HGET', kj(l.key), 'src')
		if type(v) == 'string' then before[l.key] = v end
	end
	local out = f_submit(sub)
	local tn = {}
	for i, l in ipairs(life) do
		if out[i] == 'ok' and before[l.key] ~= l.src then
			local jk = kj(l.key)
			if l.rt >= 0 then redis.call('HSET', jk, 'rt', string.format('%d', l.rt)) end
			if l.bo > 0 then redis.call('HSET', jk, 'bo', string.format('%d', l.bo)) end
			local due = 0
			if l.at > 0 then due = l.at elseif l.delay > 0 then due = NOW + l.delay end
			if due > NOW then
				local j = job(l.key)
				redis.call('ZREM', kq(j.t, j.tg), j.m)
				if j.tg ~= '' and redis.call('ZCARD', kq(j.t, j.tg)) == 0 then
					redis.call('SREM', ktg(j.t), j.tg)
				end
				incr(kt(j.t), 'queued', -1)
				incr(kt(j.t), 'delayed', 1)
				due_at(l.key, due)
			end
		end
	end
	flush_incr()
	return out
end

-- jobfs_fail P N, groups of 3: key att error -> retry | failed | late
-- A worker reported that its attempt failed: with retries left (the job's
-- `rt`, else its type's), it waits out its backoff in P:dly; else it ends
-- failed, in the dead set.
local function f_fail(args)
	local ng = groups(args, 3, 3, 'fail')
	chk_glob()
	chk(P .. ':run:' .. N, 'set')
	for g = 0, ng - 1 do
		local b = 3 + g * 3
		int_arg(args[b + 1], 'att')
		chk_job(args[b])
		local t = redis.pcall('HGET', kj(args[b]), 't')
		if type(t) == 'string' then chk(kcfg(t), 'hash') end
	end
	local out = {}
	for g = 0, ng - 1 do
		local b = 3 + g * 3
		local key, att, e = args[b], string.format('%d', tonumber(args[b + 1])), args[b + 2]
		local j = take_job(key)
		if leased(j, att) then
			local jk, tk = kj(key), kt(j.t)
			local cfg = redis.call('HMGET', kcfg(j.t), 'retries', 'backoff')
			local rt = tonumber(j.rt or cfg[1] or '0') or 0
			local fc = redis.call('HINCRBY', jk, 'fc', 1)
			redis.call('HDEL', jk, 'd')
			redis.call('SREM', P .. ':run:' .. N, key)
			incr(tk, 'running', -1)
			if fc > rt then
				finish(key, j, 'failed', e, N, att)
				redis.call('HSET', jk, 'wd', '')
				out[#out + 1] = 'failed'
			else
				redis.call('HSET', jk, 'st', 'queued', 'r', e)
				incr(tk, 'delayed', 1)
				incr(tk, 'retried', 1)
				incr(P .. ':stats', 'retried', 1)
				due_at(key, NOW + backoff_wait(j, cfg[2], fc))
				out[#out + 1] = 'retry'
			end
		else
			out[#out + 1] = 'late'
		end
	end
	return out
end

-- jobfs_due P N max -> {moved, next}: the delayed jobs whose time has
-- come (at most max) go to their queues, in their place.  Each is moved
-- by exactly one call (one daemon), whoever asks.  next: the earliest
-- due time left (Redis clock ms), -1 if none.
local function f_due(args)
	local max = int_arg(args[3] or '100', 'max')
	local dk = P .. ':dly'
	chk(dk, 'zset')
	local keys = redis.call('ZRANGEBYSCORE', dk, '-inf', NOWS, 'LIMIT', 0, max)
	for _, key in ipairs(keys) do chk_job(key) end
	local woken, order, moved = {}, {}, 0
	for _, key in ipairs(keys) do
		redis.call('ZREM', dk, key)
		local j = take_job(key)
		if j and j.st == 'queued' and j.due then
			redis.call('HDEL', kj(key), 'due')
			redis.call('ZADD', kq(j.t, j.tg), 0, j.m)
			if j.tg ~= '' then redis.call('SADD', ktg(j.t), j.tg) end
			incr(kt(j.t), 'delayed', -1)
			incr(kt(j.t), 'queued', 1)
			if not woken[j.t] then
				woken[j.t] = 0
				order[#order + 1] = j.t
			end
			woken[j.t] = woken[j.t] + 1
			moved = moved + 1
		end
	end
	-- the caller's own idle workers ask by its reply; the others are woken
	for _, T in ipairs(order) do wake(T, woken[T], true) end
	local nx = redis.call('ZRANGE', dk, 0, 0, 'WITHSCORES')
	local types = {}
	for _, T in ipairs(order) do types[#types + 1] = T end
	return { moved, nx[2] or '-1', types }
end

-- jobfs_kick P N key [T] -> kicked count: a dead job (key), or every dead
-- job of type T (key ''), is queued again with fresh attempts, in its
-- place; the daemons that hold a copy of it forget it (`g`).
local function f_kick(args)
	local key, T = args[3], args[4] or ''
	if not key then fail('ERR jobfs: kick takes key [type]') end
	chk_glob()
	local keys = {}
	if key ~= '' then
		keys[1] = key
	else
		for _, k in ipairs(redis.call('ZRANGE', P .. ':dead', 0, 9999)) do
			keys[#keys + 1] = k
		end
	end
	for _, k in ipairs(keys) do chk_job(k) end
	local n = 0
	for _, k in ipairs(keys) do
		local j = take_job(k)
		if j and j.st == 'failed' and (T == '' or j.t == T) then
			local jk = kj(k)
			redis.call('ZREM', P .. ':dead', k)
			redis.call('ZREM', P .. ':done', k)
			redis.call('HDEL', jk, 'r', 'fin', 'fd', 'fa', 'fc', 'due')
			local fl = string.gsub(j.fl or '', 'o', '')
			redis.call('HSET', jk, 'st', 'queued', 'ls', 0, 'wd', '', 'fl', fl)
			redis.call('ZADD', kq(j.t, j.tg), 0, j.m)
			if j.tg ~= '' then redis.call('SADD', ktg(j.t), j.tg) end
			incr(kt(j.t), 'kept', -1)
			incr(kt(j.t), 'queued', 1)
			incr(kt(j.t), 'kicked', 1)
			publish_ev(j.o, j.wd, 'g ' .. kl(k))
			wake(j.t, 1, j.tg ~= '')
			n = n + 1
		end
	end
	return n
end

-- jobfs_dead P N [T] -> keys: the dead set, oldest first (of type T).
local function f_dead(args)
	local T = args[3] or ''
	local out = {}
	for _, k in ipairs(redis.call('ZRANGE', P .. ':dead', 0, 99999)) do
		if T == '' or redis.call('HGET', kj(k), 't') == T then out[#out + 1] = k end
	end
	return out
end

-- jobfs_config P N T field value [field value ...] -> the settings
-- {paused, limit, retries, backoff}: a type's settings for the whole
-- cluster (fields paused, limit, retries, backoff; -1 keeps one).  Every
-- daemon hears them (`k`); a resume or a raised limit wakes idle daemons.
local function f_config(args)
	local T = args[3]
	if not T or T == '' then fail('ERR jobfs: config takes a type') end
	local ck = kcfg(T)
	chk(ck, 'hash')
	chk(kidle(T), 'zset')
	local set = {}
	for i = 4, #args - 1, 2 do
		local f, v = args[i], int_arg(args[i + 1], args[i])
		if f ~= 'paused' and f ~= 'limit' and f ~= 'retries' and f ~= 'backoff' then
			fail('ERR jobfs: config: no setting ' .. f)
		end
		set[#set + 1] = { f, v }
	end
	for _, fv in ipairs(set) do
		if fv[2] >= 0 then redis.call('HSET', ck, fv[1], string.format('%d', fv[2])) end
	end
	local v = redis.call('HMGET', ck, 'paused', 'limit', 'retries', 'backoff')
	local out = { v[1] or '0', v[2] or '0', v[3] or '0', v[4] or '0' }
	if out[1] == '0' and out[2] == '0' and out[3] == '0' and out[4] == '0' then
		redis.call('DEL', ck)
	end
	redis.call('PUBLISH', P .. ':x', 'k ' .. table.concat(out, ' ') .. ' ' .. T)
	if out[1] == '0' then wake(T, 0, true) end
	return out
end

-- jobfs_configs P N -> T paused limit retries backoff ...: every type's
-- settings (a daemon that (re)connects learns them).
local function f_configs(args)
	local out = {}
	for _, T in ipairs(redis.call('SMEMBERS', P .. ':types')) do
		local v = redis.call('HMGET', kcfg(T), 'paused', 'limit', 'retries', 'backoff')
		if v[1] or v[2] or v[3] or v[4] then
			out[#out + 1] = T
			for i = 1, 4 do out[#out + 1] = v[i] or '0' end
		end
	end
	return out
end

local funcs = {
	{ 'jobfs_hello', f_hello, true },
	{ 'jobfs_submit', f_submit, true },
	{ 'jobfs_dispatch', f_dispatch, true },
	{ 'jobfs_complete', f_complete, true },
	{ 'jobfs_partial', f_partial, true },
	{ 'jobfs_requeue', f_requeue, true },
	{ 'jobfs_end', f_end, true },
	{ 'jobfs_forget', f_forget, true },
	{ 'jobfs_watch', f_watch, true },
	{ 'jobfs_worker', f_worker, true },
	{ 'jobfs_leases', f_leases, true },
	{ 'jobfs_pin', f_pin, true },
	{ 'jobfs_reap', f_reap, false },
	{ 'jobfs_list', f_list, true },
	{ 'jobfs_workers_put', f_workers_put, true },
	{ 'jobfs_workers', f_workers, true },
	{ 'jobfs_submit_life', f_submit_life, true },
	{ 'jobfs_fail', f_fail, true },
	{ 'jobfs_due', f_due, true },
	{ 'jobfs_kick', f_kick, true },
	{ 'jobfs_dead', f_dead, true },
	{ 'jobfs_config', f_config, true },
	{ 'jobfs_configs', f_configs, true },
}
for i = 1, #funcs do
	local f = funcs[i]
	redis.register_function {
		function_name = f[1],
		callback = wrap(f[2], f[3]),
		flags = { 'no-cluster' },
	}
end
