# Sidekiq's producer side of tests/bench/redis.sh's peers shape.
#
#   ruby sidekiq_bench.rb rt   URL M K N BYTES   M masters (a thread and a
#       connection each, K jobs in flight each): a job is pushed with
#       Sidekiq::Client, answered when its [i, body] comes back on
#       bench:res:M (BLPOP)
#   ruby sidekiq_bench.rb bulk URL N BYTES CHUNK  Sidekiq::Client.push_bulk
#       of N jobs, CHUNK at a time, no worker
#
# Output: one "RESULT key=value ..." line (n, secs, jobs_per_sec, p50_us,
# p99_us, errors).
require 'sidekiq'
require 'json'

def body(i, bytes)
	s = "#{i}-"
	s + ((97 + i % 26).chr * [0, bytes - s.length].max)
end

def now
	Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

def pct(v, p)
	return 0 if v.empty?
	v[[v.length - 1, (p * (v.length - 1)).round].min]
end

def result(h)
	puts 'RESULT ' + h.map { |k, v| "#{k}=#{v}" }.join(' ')
	$stdout.flush
end

mode, url, *a = ARGV
Sidekiq.configure_client { |c| c.redis = { url: url, size: 8 } }

case mode
when 'rt'
	m_count, k, n, bytes = a.map(&:to_i)
	lat = []
	errors = 0
	lock = Mutex.new
	nxt = 0
	take = lambda do
		lock.synchronize { nxt < n ? (nxt += 1) - 1 : nil }
	end
	t0 = now
	threads = (0...m_count).map do |m|
		Thread.new do
			r = Redis.new(url: url)
			sent = {}
			push = lambda do
				i = take.call
				next false unless i
				sent[i] = now
				Sidekiq::Client.push('class' => 'EchoJob', 'queue' => 'bench',
				                     'args' => [m, i, body(i, bytes)])
				true
			end
			k.times { break unless push.call }
			until sent.empty?
				_, v = r.blpop("bench:res:#{m}", timeout: 60)
				if v.nil?
					lock.synchronize { errors += sent.size }
					break
				end
				i, b = JSON.parse(v)
				t = sent.delete(i)
				lock.synchronize do
					errors += 1 if t.nil? || b != body(i, bytes)
					lat << (now - t) * 1e6 if t
				end
				push.call
			end
			r.close
		end
	end
	threads.each(&:join)
	secs = now - t0
	lat.sort!
	result(n: n, secs: format('%.3f', secs), jobs_per_sec: (n / secs).round,
	       p50_us: format('%.1f', pct(lat, 0.5)), p99_us: format('%.1f', pct(lat, 0.99)),
	       errors: errors + (n - lat.size))
	exit(errors.zero? && lat.size == n ? 0 : 1)
when 'bulk'
	n, bytes, chunk = a.map(&:to_i)
	chunk = 1000 if chunk <= 0
	t0 = now
	(0...n).step(chunk) do |i|
		args = (i...[n, i + chunk].min).map { |j| [-1, j, body(j, bytes)] }
		Sidekiq::Client.push_bulk('class' => 'EchoJob', 'queue' => 'bench', 'args' => args)
	end
	secs = now - t0
	result(n: n, secs: format('%.3f', secs), jobs_per_sec: (n / secs).round, errors: 0)
else
	warn "sidekiq_bench.rb: unknown mode #{mode}"
	exit 2
end
