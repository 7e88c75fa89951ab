// A little JavaScript over pages that work without it: search as you type, the radio.
"use strict";

function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

function searchAsYouType() {
  const box = document.getElementById("q");
  const results = document.getElementById("results-box");
  if (!box || !results) return;
  let latest = 0;
  const run = debounce(async () => {
    const q = box.value.trim();
    const ticket = ++latest;
    // The page's own "preserved" choice (the filter link) carries over to live results.
    const preserved = new URLSearchParams(location.search).get("preserved");
    const extra = preserved === null ? "" : "&preserved=" + encodeURIComponent(preserved);
    const url = "/search?fragment=1&q=" + encodeURIComponent(q) + extra;
    const response = await fetch(url);
    if (ticket !== latest || !response.ok) return;   // a newer keystroke won
    results.innerHTML = await response.text();       // server-rendered, escaped HTML
    history.replaceState(null, "", q ? "/search?q=" + encodeURIComponent(q) + extra : "/");
  }, 150);
  box.addEventListener("input", run);
}

function radio() {
  const player = document.getElementById("radio-player");
  if (!player) return;
  const now = document.getElementById("now");
  const next = async () => {
    const response = await fetch("/api/v1/random?n=1&preserved=true");
    const data = await response.json();
    const track = data.results && data.results[0];
    if (!track || !track.audio_url) { now.textContent = "No preserved audio yet."; return; }
    now.textContent = "";
    const link = document.createElement("a");
    link.href = "/track/" + track.rowid;
    link.textContent = (track.name || "Untitled") + " — " + (track.artists || "");
    now.appendChild(link);                            // textContent: tags stay text
    player.src = track.audio_url;
    await player.play().catch(() => {});
  };
  player.addEventListener("ended", next);
  player.addEventListener("play", () => { if (!player.src) next(); }, { once: true });
  document.getElementById("radio-next").addEventListener("click", next);
}

function albumQueue() {
  // An album page's tracks with audio, played in order: play all, next/previous, keys.
  const player = document.getElementById("queue-player");
  if (!player) return;
  const rows = Array.from(document.querySelectorAll("#album-tracks tr[data-audio]"));
  const now = document.getElementById("queue-now");
  let at = -1;
  const playAt = (i) => {
    if (i < 0 || i >= rows.length) return;
    at = i;
    rows.forEach((row, j) => row.classList.toggle("playing", j === i));
    player.src = rows[i].dataset.audio;
    now.textContent = rows[i].dataset.title;               // textContent: tags stay text
    player.play().catch(() => {});
  };
  rows.forEach((row, i) => row.querySelector("button.play").addEventListener("click", () => playAt(i)));
  document.getElementById("play-all").addEventListener("click", () => playAt(0));
  document.getElementById("queue-next").addEventListener("click", () => playAt(at + 1));
  document.getElementById("queue-prev").addEventListener("click", () => playAt(Math.max(0, at - 1)));
  player.addEventListener("ended", () => playAt(at + 1));
  document.addEventListener("keydown", (event) => {
    // Typing stays typing; on the page and its buttons, the keys steer the queue.
    if (event.target.closest("input, textarea, select") || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === " ") {
      event.preventDefault();
      if (at < 0) playAt(0); else if (player.paused) player.play().catch(() => {}); else player.pause();
    } else if (event.key === "ArrowRight") {
      playAt(at + 1);
    } else if (event.key === "ArrowLeft") {
      playAt(Math.max(0, at - 1));
    }
  });
  window.musicarkQueue = { position: () => at, size: () => rows.length };  // for tests
}

document.addEventListener("DOMContentLoaded", () => { searchAsYouType(); radio(); albumQueue(); });
