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
    const url = "/search?fragment=1&q=" + encodeURIComponent(q);
    const response = await fetch(url);
    if (ticket !== latest || !response.ok) return;   // a newer keystroke won
    results.innerHTML = await response.text();       // server-rendered, escaped HTML
    history.replaceState(null, "", q ? "/search?q=" + encodeURIComponent(q) : "/");
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

document.addEventListener("DOMContentLoaded", () => { searchAsYouType(); radio(); });
