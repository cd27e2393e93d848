/* gridgov camera player: plays HLS (.m3u8) and HTTP-FLV (.flv) camera streams in the command wall's cards.
 *
 * The cards are Panel HTML panes, rendered in shadow DOM where <script> tags do not run, so the server
 * (dashboards/wall.py player_html) writes
 *     <video class="gg-live" data-stream="URL" data-kind="hls|flv" muted autoplay playsinline controls>
 *     <img hidden src="data:…" onload="gridgovPlay(this.previousElementSibling)">
 *     <div class="gg-unreachable" style="display:none">视频无法连接</div>
 * and the hidden image's onload (inline handlers do run) hands the video to gridgovPlay below.
 *
 * The players are vendored (gis/static/vendor: hls.js, mpegts.js) and served by this server: command-centre
 * networks have no internet. Where a stream cannot be played the video is hidden and the card says so.
 * The state is written on the element for tests and support: data-player-state is the latest of
 * "loading" | "manifest" (playlist / stream header read) | "playing" | "error", data-player-history all
 * of them in order, data-player-error why it failed.
 */
(function () {
  "use strict";

  // Live players; a card replaced by the server takes its <video> out of the page, and the sweep below
  // then stops that player (its Hls instance would otherwise keep polling the playlist for ever).
  var live = [];
  var SWEEP_MS = 5000;
  // No playlist or stream header by then: the stream is not reachable from this browser.
  var START_TIMEOUT_MS = 20000;

  function setState(video, state) {
    video.setAttribute("data-player-state", state);
    var history = video.getAttribute("data-player-history");
    video.setAttribute("data-player-history", history ? history + " " + state : state);
  }

  function message(video) {
    var el = video.nextElementSibling;
    while (el && !(el.classList && el.classList.contains("gg-unreachable"))) el = el.nextElementSibling;
    return el;
  }

  function stop(entry) {
    var i = live.indexOf(entry);
    if (i >= 0) live.splice(i, 1);
    clearTimeout(entry.timer);
    try { entry.destroy(); } catch (e) { /* already torn down */ }
  }

  function fail(entry, why) {
    var video = entry.video;
    if (video.getAttribute("data-player-state") === "error") return;
    setState(video, "error");
    video.setAttribute("data-player-error", String(why || ""));
    stop(entry);
    video.style.display = "none";
    var note = message(video);
    if (note) note.style.display = "block";
  }

  function started(entry) {
    clearTimeout(entry.timer);
    if (entry.video.getAttribute("data-player-state") === "loading") setState(entry.video, "manifest");
    var playing = entry.video.play();
    if (playing && playing.catch) playing.catch(function () { /* autoplay refused: controls remain */ });
  }

  function attachHls(entry, url) {
    var video = entry.video;
    var Hls = window.Hls;
    if (Hls && Hls.isSupported()) {
      var hls = new Hls({ enableWorker: true, lowLatencyMode: true, liveDurationInfinity: true });
      entry.destroy = function () { hls.destroy(); };
      hls.on(Hls.Events.MANIFEST_PARSED, function () { started(entry); });
      hls.on(Hls.Events.ERROR, function (event, data) {
        if (data && data.fatal) fail(entry, "hls: " + data.type + " " + data.details);
      });
      hls.loadSource(url);
      hls.attachMedia(video);
      return;
    }
    if (video.canPlayType("application/vnd.apple.mpegurl")) {   // Safari, some embedded browsers
      entry.destroy = function () { video.removeAttribute("src"); video.load(); };
      video.addEventListener("loadedmetadata", function () { started(entry); });
      video.src = url;
      return;
    }
    fail(entry, "hls: 浏览器不支持 Media Source Extensions");
  }

  function attachFlv(entry, url) {
    var mpegts = window.mpegts;
    if (!(mpegts && mpegts.isSupported() && mpegts.getFeatureList().mseLivePlayback)) {
      fail(entry, "flv: 浏览器不支持 Media Source Extensions");
      return;
    }
    var player = mpegts.createPlayer({ type: "flv", isLive: true, url: url },
                                     { enableStashBuffer: false, liveBufferLatencyChasing: true });
    entry.destroy = function () {
      player.pause(); player.unload(); player.detachMediaElement(); player.destroy();
    };
    player.on(mpegts.Events.MEDIA_INFO, function () { started(entry); });
    player.on(mpegts.Events.ERROR, function (type, detail) { fail(entry, "flv: " + type + " " + detail); });
    player.attachMediaElement(entry.video);
    player.load();
  }

  function gridgovPlay(video) {
    if (!video || video.tagName !== "VIDEO" || video.getAttribute("data-player-state")) return;
    var url = video.getAttribute("data-stream");
    var kind = video.getAttribute("data-kind");
    var entry = { video: video, destroy: function () {}, timer: null };
    live.push(entry);
    setState(video, "loading");
    video.addEventListener("playing", function () {
      if (video.getAttribute("data-player-state") !== "error"
          && video.getAttribute("data-player-state") !== "playing") setState(video, "playing");
    });
    video.addEventListener("error", function () { fail(entry, "media error"); });
    entry.timer = setTimeout(function () {
      if (video.getAttribute("data-player-state") === "loading") fail(entry, "timeout");
    }, START_TIMEOUT_MS);
    try {
      if (kind === "hls") attachHls(entry, url);
      else if (kind === "flv") attachFlv(entry, url);
      else fail(entry, "unknown kind " + kind);
    } catch (e) {
      fail(entry, e && e.message ? e.message : e);
    }
  }

  setInterval(function () {
    live.slice().forEach(function (entry) { if (!entry.video.isConnected) stop(entry); });
  }, SWEEP_MS);

  window.gridgovPlay = gridgovPlay;
  // How many players are running: for tests and support (the sweep keeps it to the cards on screen).
  window.gridgovPlayers = function () { return live.length; };
})();
