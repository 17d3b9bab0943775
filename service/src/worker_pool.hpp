#pragma once

// Private to the ingress: the pool of threads cpp-httplib runs connections on. Each
// request that waits for its answer holds one worker (http_ingress.cpp), so the pool must
// be able to hold `pending_max` of them and still serve /health, /metrics and the 503s
// that refuse the next ones: it grows on demand up to `pending_max + limits::spare_workers` and
// never beyond. cpp-httplib 0.11's own ThreadPool has a fixed size and an unbounded queue;
// this one still queues connections beyond its bound (httplib's TaskQueue cannot refuse a
// connection), but never while a worker could take them.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <httplib.h>

namespace eddy::service::detail {

/// A task queue whose threads start when work arrives and none is idle. Owned by the
/// httplib server; enqueue() is thread-safe, shutdown() joins every worker.
class worker_pool final : public httplib::TaskQueue {
public:
  explicit worker_pool(size_t workers_max)
    : workers_max_(workers_max) {}
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;
  ~worker_pool() override = default;

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard guard{mtx_};
      jobs_.push_back(std::move(fn));
      if (idle_ == 0 && threads_.size() < workers_max_) {
        threads_.emplace_back([this] { work(); });
      }
    }
    cv_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard guard{mtx_};
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) {
      t.join();
    }
  }

  /// Threads started so far (at most `workers_max`).
  [[nodiscard]] size_t workers() {
    std::lock_guard guard{mtx_};
    return threads_.size();
  }

private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock{mtx_};
        ++idle_;
        cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        --idle_;
        if (jobs_.empty()) {
          return;
        }
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      fn();
    }
  }

  const size_t workers_max_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool stopping_ = false;
};

} // namespace eddy::service::detail
