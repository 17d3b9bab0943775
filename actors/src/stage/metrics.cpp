#include "eddy/actors/metrics.hpp"

#include <algorithm>
#include <map>

namespace eddy {

std::vector<operator_totals> totals_by_operator(const job_handle& job) {
  std::map<std::string, std::vector<actor_info>> by_op;
  for (auto& a : job.actors()) {
    by_op[a.node].push_back(a);
  }
  // What each operator sent downstream: its consumers' lag and mailbox.
  std::map<std::string, std::pair<uint64_t, uint64_t>> sent;
  for (const auto& [op, list] : by_op) {
    for (const auto& a : list) {
      sent[op].first += a.metrics->events_out;
      sent[op].second += a.metrics->batches_out;
    }
  }
  std::vector<operator_totals> result;
  for (const auto& spec : job.graph().nodes()) {
    operator_totals t;
    t.job = job.name();
    t.op = spec.name;
    t.kind = spec.kind;
    const auto& list = by_op[spec.name];
    t.actors = list.size();
    bool first = true;
    for (const auto& a : list) {
      const auto& m = *a.metrics;
      t.watermark = first ? m.watermark.load() : std::min<int64_t>(t.watermark, m.watermark);
      first = false;
      t.events_in += m.events_in;
      t.events_out += m.events_out;
      t.batches_in += m.batches_in;
      t.queued += m.queued_batches;
      t.credit += m.credit;
      t.restarts += m.restarts;
      t.dead_letters += m.dead_lettered;
      t.failed += m.status == actor_status::failed ? 1 : 0;
      for (size_t i = 0; i < t.commit_buckets.size(); ++i) {
        t.commit_buckets[i] += m.commit_latency.buckets[i];
      }
      t.commit_sum_us += m.commit_latency.sum_us;
      t.commits += m.commit_latency.count;
    }
    if (spec.input) {
      // Sent to it and not taken in: in channels, mailboxes, parked while paused.
      auto [records, batches] = sent[job.graph().node(*spec.input).name];
      for (auto m : spec.more_inputs) {
        records += sent[job.graph().node(m).name].first;
        batches += sent[job.graph().node(m).name].second;
      }
      t.has_input = true;
      t.lag = records > t.events_in ? records - t.events_in : 0;
      t.mailbox = batches > t.batches_in ? batches - t.batches_in : 0;
    }
    result.push_back(std::move(t));
  }
  return result;
}

namespace {

/// Appends one metric family: its HELP and TYPE lines, then a line per operator.
template <class Value>
void family(std::string& out, const std::vector<operator_totals>& ops, const std::string& name,
            const char* type, const std::string& help, Value value) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  for (const auto& t : ops) {
    out +=
      name + "{job=\"" + t.job + "\",operator=\"" + t.op + "\"} " + std::to_string(value(t)) + "\n";
  }
}

std::string seconds(uint64_t us) {
  auto text = std::to_string(us / 1000000) + ".";
  auto frac = std::to_string(us % 1000000);
  return text + std::string(6 - frac.size(), '0') + frac;
}

} // namespace

std::string actor_counters_line(const actor_info& actor) {
  const auto& m = *actor.metrics;
  auto commits = m.commit_latency.count.load();
  auto mean_us = commits == 0 ? 0 : m.commit_latency.sum_us.load() / commits;
  std::string line = "actor=" + actor.name;
  for (const auto& [key, value] : {std::pair{"events_in", m.events_in.load()},
                                   {"batches_in", m.batches_in.load()},
                                   {"events_out", m.events_out.load()},
                                   {"batches_out", m.batches_out.load()},
                                   {"commits", commits},
                                   {"commit_us_mean", mean_us},
                                   {"queued_peak", m.queued_batches_peak.load()},
                                   {"buffered_peak", m.buffered_events_peak.load()},
                                   {"keys", m.keys.load()},
                                   {"duplicates_dropped", m.duplicates_dropped.load()}}) {
    line += std::string{" "} + key + "=" + std::to_string(value);
  }
  return line;
}

std::string prometheus_text(const job_handle& job) {
  auto ops = totals_by_operator(job);
  std::string out;
  family(out, ops, "eddy_events_in_total", "counter", "Records an operator took in.",
         [](const operator_totals& t) { return t.events_in; });
  family(out, ops, "eddy_events_out_total", "counter", "Records an operator sent on.",
         [](const operator_totals& t) { return t.events_out; });
  family(out, ops, "eddy_dead_letters_total", "counter",
         "Records an operator sent to the dead-letter journal.",
         [](const operator_totals& t) { return t.dead_letters; });
  family(out, ops, "eddy_restarts_total", "counter", "Restarts of the job an operator caused.",
         [](const operator_totals& t) { return t.restarts; });
  family(out, ops, "eddy_mailbox_batches", "gauge",
         "Batches sent to an operator and not taken in yet.",
         [](const operator_totals& t) { return t.mailbox; });
  family(out, ops, "eddy_lag_events", "gauge", "Records sent to an operator and not taken in yet.",
         [](const operator_totals& t) { return t.lag; });
  family(out, ops, "eddy_queued_batches", "gauge", "Batches an operator holds waiting for credit.",
         [](const operator_totals& t) { return t.queued; });
  const std::string h = "eddy_commit_latency_seconds";
  out += "# HELP " + h + " Time from the start of a partition's commit until it is durable.\n";
  out += "# TYPE " + h + " histogram\n";
  for (const auto& t : ops) {
    if (t.kind != node_kind::keyed) {
      continue;
    }
    auto labels = "job=\"" + t.job + "\",operator=\"" + t.op + "\"";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < t.commit_buckets.size(); ++i) {
      cumulative += t.commit_buckets[i];
      auto le = i < latency_histogram::bounds_us.size() ? seconds(latency_histogram::bounds_us[i])
                                                        : std::string{"+Inf"};
      out += h + "_bucket{" + labels + ",le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
    }
    out += h + "_sum{" + labels + "} " + seconds(t.commit_sum_us) + "\n";
    out += h + "_count{" + labels + "} " + std::to_string(t.commits) + "\n";
  }
  out += "# HELP eddy_job_restarts_total Restarts of the job.\n# TYPE eddy_job_restarts_total "
         "counter\neddy_job_restarts_total{job=\"" +
         job.name() + "\"} " + std::to_string(job.restarts()) + "\n";
  return out;
}

} // namespace eddy
