#include "node/store_worker.hpp"

namespace p2pcdn::node {

StoreWorker::StoreWorker(std::size_t maxQueued) : maxQueued_(maxQueued), thread_([this] { run(); }) {}

StoreWorker::~StoreWorker() {
  std::deque<std::function<void()>> dropped;  // destroyed outside the lock: a task's destructor may call back
  {
    std::lock_guard l(mu_);
    stopping_ = true;
    dropped.swap(tasks_);
  }
  wake_.notify_one();
  thread_.join();
}

bool StoreWorker::post(std::function<void()> task) {
  {
    std::lock_guard l(mu_);
    if (stopping_ || tasks_.size() >= maxQueued_) return false;
    tasks_.push_back(std::move(task));
  }
  wake_.notify_one();
  return true;
}

void StoreWorker::run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock l(mu_);
      wake_.wait(l, [this] { return stopping_ || !tasks_.empty(); });
      if (stopping_) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace p2pcdn::node
