// The playlist service: playlists (ordered song ids) as keyed state, changed and read over
// HTTP.
//
//   GET    /playlists/{id}                    the playlist (unknown id: empty, version 0)
//   POST   /playlists/{id}/songs              {"song":"s1","position":2} inserts the song at
//                                             position 0..len (default: appends); a full
//                                             playlist (--playlist.max-songs): 409
//   DELETE /playlists/{id}/songs/{position}   removes the song at position 0..len-1
//   POST   /playlists/{id}/moves              {"from":i,"to":j} moves the song at i so that
//                                             it is at j (both 0..len-1)
//
// Every applied change adds 1 to the playlist's version; a refused one changes nothing.
// Every request is durable in the ingress log before it is applied, and answered after the
// playlist's partition committed the change. A retried request with its Idempotency-Key
// gets the first answer again. A position that depends on the playlist's length is checked
// by the keyed function (400 naming the field); everything else by the route.

#include <charconv>
#include <iostream>
#include <optional>
#include <vector>

#include "eddy/actors/engine.hpp"
#include "eddy/eddy.hpp"
#include "eddy/service/http_ingress.hpp"
#include "eddy/service/serve.hpp"

namespace {

using eddy::service::http_call;
using eddy::service::rejection;
using eddy::service::request;
using eddy::service::response;

struct playlist {
  std::vector<std::string> songs;
  int64_t version = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(playlist, songs, version)

/// The most --playlist.max-songs may be, so also the most songs a playlist ever holds: a
/// position above it is refused by the route, before the request is logged.
constexpr int64_t max_songs_limit = 1'000'000;

nlohmann::json playlist_json(const std::string& id, const playlist& p) {
  return {{"id", id}, {"songs", p.songs}, {"version", p.version}};
}

response error(int status, const std::string& field, const std::string& message) {
  return response{0, status, {{"error", message}, {"field", field}}, {}};
}

/// 400 naming `field` unless `pos` is in 0..hi (`len`: the playlist's length).
std::optional<response> out_of_range(const std::string& field, int64_t pos, int64_t hi,
                                     size_t len) {
  if (pos >= 0 && pos <= hi) {
    return std::nullopt;
  }
  if (hi < 0) {
    return error(400, field,
                 "the playlist is empty: there is no " + field + " " + std::to_string(pos));
  }
  return error(400, field,
               field + " must be in 0.." + std::to_string(hi) + ", not " + std::to_string(pos) +
                 " (the playlist holds " + std::to_string(len) + " songs)");
}

struct playlist_settings {
  int64_t max_songs = 10'000;
  int64_t idempotency_keep_ms = 24 * 3'600'000;
};

/// Applies `r` to the playlist `p` named `id`; the answer.
response apply(const request& r, const std::string& id, playlist& p, const playlist_settings& s) {
  const auto& params = r.params;
  auto len = static_cast<int64_t>(p.songs.size());
  if (r.route == "get_playlist") {
    return response{0, 200, playlist_json(id, p), {}};
  }
  if (r.route == "add_song") {
    auto pos = params.contains("position") ? params.at("position").get<int64_t>() : len;
    if (auto refused = out_of_range("position", pos, len, p.songs.size())) {
      return *refused;
    }
    if (len >= s.max_songs) {
      return error(409, "songs",
                   "a playlist holds at most " + std::to_string(s.max_songs) + " songs");
    }
    p.songs.insert(p.songs.begin() + pos, params.at("song").get<std::string>());
  } else if (r.route == "remove_song") {
    auto pos = params.at("position").get<int64_t>();
    if (auto refused = out_of_range("position", pos, len - 1, p.songs.size())) {
      return *refused;
    }
    p.songs.erase(p.songs.begin() + pos);
  } else if (r.route == "move_song") {
    auto from = params.at("from").get<int64_t>();
    auto to = params.at("to").get<int64_t>();
    if (auto refused = out_of_range("from", from, len - 1, p.songs.size())) {
      return *refused;
    }
    if (auto refused = out_of_range("to", to, len - 1, p.songs.size())) {
      return *refused;
    }
    auto song = std::move(p.songs[from]);
    p.songs.erase(p.songs.begin() + from);
    p.songs.insert(p.songs.begin() + to, std::move(song));
  } else {
    return error(404, "route", "no route " + r.route);
  }
  ++p.version;
  return response{0, 200, playlist_json(id, p), {}};
}

/// The keyed function: answers every request once (Idempotency-Key), keeps the playlist.
auto playlist_function(playlist_settings s) {
  return [s](const request& r, auto& ctx, auto& out) {
    auto& state = ctx.template value<playlist>("playlist");
    auto p = state.get_or(playlist{});
    auto before = p.version;
    auto res = eddy::service::answer_once(r, ctx, s.idempotency_keep_ms,
                                          [&] { return apply(r, ctx.key(), p, s); });
    if (p.version != before) {
      state.set(std::move(p));
    }
    out.emit(std::move(res));
  };
}

request keyed(const http_call& call) {
  request r;
  r.key = eddy::service::require_id(call.params.at(0), "id");
  return r;
}

/// A position in the path: an integer in 0..max_songs_limit - 1, else a rejection.
int64_t path_position(const std::string& text) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec == std::errc::invalid_argument || end != text.data() + text.size()) {
    throw rejection{400, "position", "position must be an integer, not '" + text + "'"};
  }
  if (ec == std::errc::result_out_of_range || v < 0 || v >= max_songs_limit) {
    throw rejection{400, "position",
                    "position must be in 0.." + std::to_string(max_songs_limit - 1)};
  }
  return v;
}

void add_routes(eddy::service::http_ingress& http) {
  using eddy::service::body_fields;
  const std::string id = "/playlists/([^/]+)";
  http.route("GET", id, "get_playlist", keyed);
  http.route("POST", id + "/songs", "add_song", [](const http_call& call) {
    auto r = keyed(call);
    body_fields body{call.body};
    r.params = {{"song", body.id("song")}};
    auto pos = body.integer_or("position", 0, max_songs_limit, -1);
    if (pos >= 0) {
      r.params["position"] = pos;
    }
    return r;
  });
  http.route("DELETE", id + "/songs/([^/]+)", "remove_song", [](const http_call& call) {
    auto r = keyed(call);
    r.params = {{"position", path_position(call.params.at(1))}};
    return r;
  });
  http.route("POST", id + "/moves", "move_song", [](const http_call& call) {
    auto r = keyed(call);
    body_fields body{call.body};
    r.params = {{"from", body.integer("from", 0, max_songs_limit - 1)},
                {"to", body.integer("to", 0, max_songs_limit - 1)}};
    return r;
  });
}

} // namespace

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  eddy::command_line cli{"playlist-service",
                         "playlists (ordered song ids) as keyed state, served over HTTP"};
  eddy::service::add_service_options(
    cli, "JSON lines of events (none so far; default: <data-dir>/playlist-service.jsonl)");
  cli.app_options().add_options()(
    "playlist.max-songs", po::value<int64_t>()->default_value(10'000),
    "songs a playlist holds at most (1..1000000); adding to a full one is 409");
  if (auto code = cli.parse(argc, argv)) {
    return *code;
  }
  eddy::service::service_settings service;
  if (auto problem = eddy::service::read_service_options(cli, "playlist-service", service)) {
    return cli.usage_error(*problem);
  }
  playlist_settings settings;
  settings.idempotency_keep_ms = service.idempotency_keep_ms;
  settings.max_songs = cli.values()["playlist.max-songs"].as<int64_t>();
  if (settings.max_songs < 1 || settings.max_songs > max_songs_limit) {
    return cli.usage_error("--playlist.max-songs must be in 1.." + std::to_string(max_songs_limit));
  }
  auto output = service.output;
  eddy::service::http_ingress http{service.ingress};
  add_routes(http);

  eddy::job_builder job{"playlist-service"};
  job.partitions(cli.runtime.partitions);
  job.source("requests", http.source())
    .key_by([](const request& r) { return r.key; })
    .declare_state<eddy::value_state<playlist>>("playlist")
    .process<response>("playlists", playlist_function(settings))
    .sink("responses", http.responses(output));
  return eddy::service::serve(cli, http, "playlist-service", job.build(),
                              "events in " + output.string());
}
