#pragma once

// Private to the runtime: a stage's side of a savepoint's cut (see "Savepoints" in
// docs/design.md). The job actor asks every source for a cut; each source seals what it read
// and sends a marker (a batch without records, `batch::cut`) on every channel. A stage that
// consumed the marker of one input parks that input's later batches until the markers of all
// its inputs are in (aligned, like Flink's barriers: nothing from after the cut is processed
// before it), then does its part of the cut (a partition commits and pins its journal), hands
// a `cut_report` to the job's `cut_registry`, sends its own markers and takes up the parked
// batches. Parked batches keep their credit, so an input ahead of the others is held back by
// at most its credit, and the cut's pause is the alignment, not the state's size.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "eddy/core/error.hpp"
#include "eddy/flow/batch.hpp"
#include "eddy/state/journal_store.hpp"

namespace eddy::detail {

/// What a stage hands over at a cut.
struct cut_report {
  uint64_t cut = 0;
  /// "count/3".
  std::string who;
  /// From its first marker in to its last: how long its inputs were held for the cut.
  double align_ms = 0;
  /// A partition or a transactional sink: its journal pinned at the cut, and the journal's
  /// path under the job's directory ("count/p3.db").
  std::optional<journal_pin> pin;
  std::string path;
  /// A partition: its logic's state version, key type and the states it used so far.
  uint32_t state_version = 0;
  std::string key_type;
  std::vector<std::pair<std::string, std::string>> states;
  /// A sink that writes a file: the file and its committed length at the cut.
  std::string sink_file;
  uint64_t sink_length = 0;
  /// Why the stage could not do its part (empty: it did).
  std::string error;
};

/// A journaled stage's part of its report: the journal pinned as of its last commit, and
/// its path under the job's directory.
inline void pin_journal(journal_store& journal, cut_report& r) {
  const auto& file = journal.file();
  r.path = (file.parent_path().filename() / file.filename()).string();
  if (auto pin = journal.pin()) {
    r.pin = std::move(*pin);
  } else {
    r.error = describe(pin.error());
  }
}

/// Where cut reports go: the savepoint under way (see savepoint/session.hpp).
class cut_receiver {
public:
  virtual ~cut_receiver() = default;
  /// Called on the reporting stage's thread.
  virtual void deliver(cut_report report) = 0;
};

/// Shared by the job actor and every stage of a job: passes each report to the savepoint of
/// its cut and drops reports of a cut no longer under way. Thread-safe.
class cut_registry {
public:
  void open(uint64_t cut, std::shared_ptr<cut_receiver> to) {
    std::lock_guard guard{mtx_};
    cut_ = cut;
    to_ = std::move(to);
  }
  void close() {
    std::lock_guard guard{mtx_};
    cut_ = 0;
    to_.reset();
  }
  void deliver(cut_report report) {
    std::shared_ptr<cut_receiver> to;
    {
      std::lock_guard guard{mtx_};
      if (report.cut != cut_ || !to_) {
        return;
      }
      to = to_;
    }
    to->deliver(std::move(report));
  }

private:
  std::mutex mtx_;
  uint64_t cut_ = 0;
  std::shared_ptr<cut_receiver> to_;
};

/// One stage's alignment of a cut: the inputs whose marker came, and the batches they sent
/// after it. Owned by the stage's actor; not thread-safe.
class cut_alignment {
public:
  /// True (and `b` is kept) when `b` must wait: its channel's marker came and the cut is
  /// not aligned yet.
  bool parks(batch& b) {
    if (cut_ == 0 || marked_.count(b.channel) == 0) {
      return false;
    }
    parked_.push_back(std::move(b));
    return true;
  }
  /// The marker of cut `cut` was consumed on `channel`.
  void marked(uint64_t cut, channel_id channel) {
    if (cut_ == 0) {
      cut_ = cut;
      since_ = std::chrono::steady_clock::now();
    }
    marked_.insert(channel);
  }
  /// Whether a cut is under way and every input is marked or ended (`finished` of
  /// `expected` inputs ended: an ended input sends no marker).
  [[nodiscard]] bool aligned(uint32_t finished, uint32_t expected) const noexcept {
    return cut_ != 0 && marked_.size() + finished >= expected;
  }
  [[nodiscard]] uint64_t cut() const noexcept {
    return cut_;
  }
  /// After a batch on `channel` (`cut`: its marker's cut, or 0) of stage `who`, with
  /// `finished` of its `expected` inputs ended: the stage's report, to fill in, once the cut
  /// under way is aligned.
  std::optional<cut_report> step(uint64_t cut, channel_id channel, uint32_t finished,
                                 uint32_t expected, const std::string& who) {
    if (cut != 0) {
      marked(cut, channel);
    }
    if (!aligned(finished, expected)) {
      return std::nullopt;
    }
    cut_report r;
    r.cut = cut_;
    r.who = who;
    r.align_ms = align_ms();
    return r;
  }
  [[nodiscard]] double align_ms() const noexcept {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since_)
      .count();
  }
  /// Ends the cut; answers the batches parked meanwhile, in arrival order.
  std::vector<batch> finish() {
    cut_ = 0;
    marked_.clear();
    return std::exchange(parked_, {});
  }

private:
  uint64_t cut_ = 0;
  std::set<channel_id> marked_;
  std::vector<batch> parked_;
  std::chrono::steady_clock::time_point since_;
};

} // namespace eddy::detail
