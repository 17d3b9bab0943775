#include "savepoint/session.hpp"

#include <algorithm>
#include <system_error>

#include <caf/send.hpp>
#include <nlohmann/json.hpp>

#include "eddy/actors/messages.hpp"
#include "eddy/core/error.hpp"
#include "eddy/core/log.hpp"
#include "eddy/service/ingress_log.hpp"

namespace fs = std::filesystem;

namespace eddy::detail {

namespace {

/// Pages copied per backup step: the copier checks for an abort between steps.
constexpr int pages_per_step = 256;

} // namespace

savepoint_session::savepoint_session(uint64_t cut, savepoint_plan plan, caf::actor job)
  : cut_(cut)
  , id_(plan.manifest.id)
  , plan_(std::move(plan))
  , job_(std::move(job)) {
  copier_ = std::thread{[this] {
    run();
  }};
}

savepoint_session::~savepoint_session() {
  abort("the savepoint was abandoned");
  copier_.join();
}

void savepoint_session::deliver(cut_report report) {
  {
    std::lock_guard guard{mtx_};
    queue_.push_back(std::move(report));
    ++reports_;
  }
  cv_.notify_all();
}

void savepoint_session::sources_known(std::vector<savepoint_source> sources) {
  {
    std::lock_guard guard{mtx_};
    sources_ = std::move(sources);
    sources_known_ = true;
  }
  cv_.notify_all();
}

void savepoint_session::abort(std::string why) {
  {
    std::lock_guard guard{mtx_};
    if (aborted_.empty()) {
      aborted_ = std::move(why);
    }
  }
  cv_.notify_all();
}

savepoint_progress savepoint_session::progress() const {
  savepoint_progress p;
  std::lock_guard guard{mtx_};
  p.id = id_;
  p.phase = phase_;
  p.reports = reports_;
  p.reports_expected = plan_.reports_expected;
  p.files_copied = files_copied_.load();
  p.bytes_copied = bytes_copied_.load();
  p.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  return p;
}

void savepoint_session::run() {
  std::string error;
  for (;;) {
    cut_report r;
    {
      std::unique_lock guard{mtx_};
      cv_.wait(guard, [this] {
        return !aborted_.empty() || !queue_.empty() ||
               (handled_ == plan_.reports_expected && sources_known_);
      });
      if (!aborted_.empty()) {
        error = aborted_;
        break;
      }
      if (queue_.empty()) {
        phase_ = "finalizing";
        break;
      }
      r = std::move(queue_.front());
      queue_.pop_front();
      if (reports_ == plan_.reports_expected) {
        phase_ = "copying";
      }
    }
    ++handled_;
    if (r.align_ms >= pause_ms_) {
      pause_ms_ = r.align_ms;
      pause_at_ = r.who;
    }
    if (!r.error.empty()) {
      error = r.who + " could not take part: " + r.error;
      break;
    }
    if (error = copy_journal(r); !error.empty()) {
      break;
    }
  }
  std::string summary;
  if (error.empty()) {
    error = finalize(summary);
  }
  if (!error.empty()) {
    std::error_code ec;
    fs::remove_all(plan_.partial, ec);
    std::lock_guard guard{mtx_};
    phase_ = "failed";
    // Pins still queued are let go here, not when the session is destroyed.
    queue_.clear();
  }
  caf::anon_send(job_, savepoint_atom::value, cut_, error, summary);
}

std::string savepoint_session::copy_journal(cut_report& r) {
  auto& m = plan_.manifest;
  auto node = r.who.substr(0, r.who.find('/'));
  for (auto& n : m.nodes) {
    if (n.name != node || n.kind != "keyed") {
      continue;
    }
    n.state_version = r.state_version;
    n.key_type = r.key_type;
    // The states any partition used (the operator's catalog is shared, so mostly all).
    for (const auto& state : r.states) {
      const auto& name = state.first;
      auto known = std::find_if(n.states.begin(), n.states.end(),
                                [&name](const savepoint_state& s) { return s.name == name; });
      if (known == n.states.end()) {
        n.states.push_back({state.first, state.second});
      }
    }
  }
  if (!r.sink_file.empty()) {
    m.sinks.push_back({r.who, r.sink_file, r.sink_length});
  }
  if (!r.pin) {
    return {};
  }
  auto target = plan_.partial / r.path;
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) {
    return "cannot create " + target.parent_path().string() + ": " + ec.message();
  }
  using clock = std::chrono::steady_clock;
  auto copy_started = clock::now();
  for (;;) {
    // Synced with the other files once the manifest is written (finalize_savepoint).
    auto done = r.pin->copy_step(target, pages_per_step, false);
    if (!done) {
      return "copying " + r.pin->file().string() + " failed: " + describe(done.error());
    }
    if (*done) {
      break;
    }
    std::lock_guard guard{mtx_};
    if (!aborted_.empty()) {
      return aborted_;
    }
  }
  auto meta = r.pin->meta();
  // The pin holds the journal's log unfolded until here; the copy stands alone after this.
  r.pin.reset();
  auto fold_started = clock::now();
  copy_s_ += std::chrono::duration<double>(fold_started - copy_started).count();
  auto facts = normalize_journal_copy(target, meta, plan_.keep_changes);
  fold_s_ += std::chrono::duration<double>(clock::now() - fold_started).count();
  if (!facts) {
    return "folding the copy " + target.string() + " failed: " + describe(facts.error());
  }
  bytes_copied_ += fs::file_size(target, ec);
  ++files_copied_;
  m.files.push_back({r.path, 0, 0, facts->keys, facts->last_seq});
  return {};
}

std::string savepoint_session::finalize(std::string& summary_text) {
  auto& m = plan_.manifest;
  {
    std::lock_guard guard{mtx_};
    m.sources = sources_;
  }
  for (auto& s : m.sources) {
    if (s.input.empty()) {
      continue;
    }
    auto d = digest_file(s.input, s.input_bytes);
    if (!d) {
      return "reading the input of source " + s.name + " failed: " + describe(d.error());
    }
    s.input_crc32c = d->crc32c;
  }
  m.pause_ms = pause_ms_;
  if (!plan_.ingress_log.empty()) {
    if (auto err =
          service::ingress_log::copy_live(plan_.ingress_log, plan_.partial / "ingress.db")) {
      return "copying the ingress log failed: " + describe(err);
    }
    m.files.push_back({"ingress.db", 0, 0, 0, 0});
  }
  std::sort(m.files.begin(), m.files.end(),
            [](const savepoint_file& a, const savepoint_file& b) { return a.path < b.path; });
  std::sort(m.sinks.begin(), m.sinks.end(),
            [](const savepoint_sink& a, const savepoint_sink& b) { return a.name < b.name; });
  auto finalize_started = std::chrono::steady_clock::now();
  auto done = finalize_savepoint(plan_.partial, m);
  if (!done) {
    return describe(done.error());
  }
  uint64_t keys = 0;
  for (const auto& f : m.files) {
    keys += f.keys;
  }
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  nlohmann::ordered_json summary{
    {"id", m.id},
    {"pause_ms", m.pause_ms},
    {"pause_at", pause_at_},
    {"seconds", seconds},
    {"copy_s", copy_s_},
    {"fold_s", fold_s_},
    {"finalize_s",
     std::chrono::duration<double>(std::chrono::steady_clock::now() - finalize_started).count()},
    {"files", m.files.size()},
    {"bytes", bytes_copied_.load()},
    {"keys", keys},
    {"path", done->string()}};
  {
    std::lock_guard guard{mtx_};
    phase_ = "done";
  }
  log(log_level::info, "savepoint",
      "savepoint " + m.id + " of job " + m.job + " is complete: " + done->string() + " (" +
        std::to_string(m.files.size()) + " journals, " + std::to_string(bytes_copied_.load()) +
        " bytes, inputs held " + std::to_string(m.pause_ms) + " ms at most, by " + pause_at_ + ")");
  summary_text = summary.dump();
  return {};
}

} // namespace eddy::detail
