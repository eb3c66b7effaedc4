# Sidekiq's worker side of tests/bench/redis.sh's peers shape, loaded by
#   REDIS_URL=redis://... sidekiq -r ./sidekiq_jobs.rb -c CONCURRENCY -q bench
# EchoJob answers job (m, i, body): it pushes [i, body] onto the list
# bench:res:M, where master M waits for it with BLPOP (Sidekiq has no
# results of its own; this is the usual way to return one).  With m < 0
# (the bulk shape's jobs) it only counts.
#
# BENCH_READY: a file this process writes once it is processing.
# BENCH_DRAIN_N: with it, the process writes "SECS" (from ready to the N-th
# job done) to BENCH_DONE and stops counting.
require 'sidekiq'
require 'json'

module BenchState
	@mutex = Mutex.new
	@done = 0
	@t0 = nil
	class << self
		attr_accessor :t0
		def count
			n = ENV['BENCH_DRAIN_N'].to_i
			return if n <= 0
			@mutex.synchronize do
				@done += 1
				next unless @done == n
				secs = Process.clock_gettime(Process::CLOCK_MONOTONIC) - @t0
				File.write(ENV['BENCH_DONE'] + '.tmp', format("%.3f\n", secs))
				File.rename(ENV['BENCH_DONE'] + '.tmp', ENV['BENCH_DONE'])
			end
		end
	end
end

Sidekiq.configure_server do |config|
	config.on(:startup) do
		BenchState.t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
		File.write(ENV['BENCH_READY'], "ready\n") if ENV['BENCH_READY']
	end
end

class EchoJob
	include Sidekiq::Worker
	sidekiq_options retry: false

	def perform(m, i, body)
		if m >= 0
			Sidekiq.redis { |r| r.lpush("bench:res:#{m}", JSON.generate([i, body])) }
		end
		BenchState.count
	end
end
