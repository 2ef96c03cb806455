// StoreWorker: the native TaskQueue (AsioRuntime::storeQueue). One thread
// runs store operations (chunk reads with their BLAKE3 re-hash, chunk writes)
// off the network loop, in the order they were
// posted. Each task posts its own completion back to the loop.
//
// Bounded: post() refuses once maxQueued tasks wait. The destructor lets the
// running task finish, drops the waiting ones and joins the thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "node/runtime.hpp"

namespace p2pcdn::node {

class StoreWorker : public TaskQueue {
 public:
  explicit StoreWorker(std::size_t maxQueued = 4096);
  ~StoreWorker() override;
  StoreWorker(const StoreWorker&) = delete;
  StoreWorker& operator=(const StoreWorker&) = delete;

  // False (the task is dropped) when maxQueued tasks already wait.
  bool post(std::function<void()> task) override;

 private:
  void run();

  const std::size_t maxQueued_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is built
};

}  // namespace p2pcdn::node
