#pragma once

// Private to the runtime: one savepoint being written (see "Savepoints" in docs/design.md).
// The job actor opens a session for a cut and asks the sources for it; every other stage
// reports its part once aligned (stage/cut.hpp). The session's copier thread copies each
// pinned journal into `<savepoint-dir>/<id>.partial/` as its report comes, off the stages'
// threads, folds the copy's log so that it stands alone, and once every stage and source is
// in writes the manifest and renames the directory into place. It then tells the job actor
// (`savepoint, cut, error, summary`). Destroying an unfinished session aborts it and
// removes the partial directory; a crash leaves it, and the next start removes it.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor.hpp>

#include "eddy/savepoint/manifest.hpp"
#include "stage/cut.hpp"

namespace eddy::detail {

/// What a session writes and waits for.
struct savepoint_plan {
  /// Filled by the job actor: id, job, version, creation time, trigger, partitions and nodes;
  /// the session adds sources, sinks, files and the pause.
  savepoint_manifest manifest;
  /// `<savepoint-dir>/<id>.partial`.
  std::filesystem::path partial;
  /// Reports to wait for: every stage but the sources.
  size_t reports_expected = 0;
  /// --state.keep-changes, for folding the copies.
  size_t keep_changes = 4;
  /// A service's ingress log (its accepted requests, the input of its sources), copied
  /// once every stage is past the cut: a restore elsewhere reads the requests after the cut
  /// from it. Empty: the job has none.
  std::filesystem::path ingress_log;
};

/// Where a session stands, for `savepoints`.
struct savepoint_progress {
  std::string id;
  /// "aligning" (reports still to come), "copying", "finalizing".
  std::string phase;
  size_t reports = 0;
  size_t reports_expected = 0;
  size_t files_copied = 0;
  uint64_t bytes_copied = 0;
  double elapsed_s = 0;
};

class savepoint_session final : public cut_receiver {
public:
  /// Starts the copier; `job` learns the outcome.
  savepoint_session(uint64_t cut, savepoint_plan plan, caf::actor job);
  ~savepoint_session() override;
  savepoint_session(const savepoint_session&) = delete;
  savepoint_session& operator=(const savepoint_session&) = delete;

  void deliver(cut_report report) override;
  /// Every source answered the cut: where each stood.
  void sources_known(std::vector<savepoint_source> sources);
  /// Gives up (the job restarted or ended): the copier stops and removes what it wrote.
  void abort(std::string why);

  [[nodiscard]] savepoint_progress progress() const;
  [[nodiscard]] uint64_t cut() const noexcept {
    return cut_;
  }
  [[nodiscard]] const std::string& id() const noexcept {
    return id_;
  }

private:
  void run();
  /// Copies and folds one journal into the partial directory; "" or what failed.
  std::string copy_journal(cut_report& r);
  /// Writes the manifest and renames the directory; "" and the summary (JSON text), or what
  /// failed.
  std::string finalize(std::string& summary);

  const uint64_t cut_;
  const std::string id_;
  savepoint_plan plan_;
  caf::actor job_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<cut_report> queue_;
  size_t reports_ = 0;
  bool sources_known_ = false;
  std::vector<savepoint_source> sources_;
  std::string aborted_;
  std::string phase_ = "aligning";
  std::atomic<size_t> files_copied_{0};
  std::atomic<uint64_t> bytes_copied_{0};
  /// Touched by the copier thread only.
  size_t handled_ = 0;
  double pause_ms_ = 0;
  /// The stage that held an input longest for the cut.
  std::string pause_at_;
  /// Seconds spent copying pins, folding the copies, and finalizing (checksums, syncs).
  double copy_s_ = 0;
  double fold_s_ = 0;
  std::thread copier_;
};

} // namespace eddy::detail
