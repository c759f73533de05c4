// attnfer annotate: label clips frame by frame with the keys of paper 004.
// Every action runs in order through one queue, so keys typed while a clip loads or a save is
// under way apply once it is done.
"use strict";

const STAMPS = ["start", "end", "peak"];
const FLAG_KEYS = {
  g: "non_correlating",
  t: "abnormal_limb",
  u: "low_occlusion",
  p: "heavy_occlusion",
  x: "other",
};
const KEY_ALIASES = {
  arrowright: "d",
  arrowleft: "a",
  arrowdown: "q",
  arrowup: "up",
  enter: "e",
  " ": "s",
};
const LEAVING_KEYS = new Set(["q", "up"]);

const state = {
  clips: [], // {name, emotion, labelled} per clip
  hints: false, // whether the server computes the model's hints
  clip: null, // the open clip: {index, name, emotion, frames, fps, marks, error}
  frame: 0,
  marks: emptyMarks(),
  saved: null, // the open clip's saved marks, or null
  images: new Map(), // frame number -> promise of an object URL (open clip only)
  hint: null, // "computing", {error}, or one {label, probability} or null per frame
  leaving: false, // Q (or up) was pressed once with unsaved marks
};
let queue = Promise.resolve();

const $ = (id) => document.getElementById(id);

function emptyMarks() {
  const marks = Object.fromEntries(STAMPS.map((name) => [name, null]));
  for (const flag of Object.values(FLAG_KEYS)) marks[flag] = false;
  return marks;
}

function sameMarks(a, b) {
  return Object.keys(emptyMarks()).every((key) => a[key] === b[key]);
}

function dirty() {
  return !sameMarks(state.marks, state.saved ?? emptyMarks());
}

function say(text, error = false) {
  const message = $("message");
  message.textContent = text;
  message.classList.toggle("error", error);
}

function detail(body) {
  if (typeof body.detail === "string") return body.detail;
  if (Array.isArray(body.detail)) {
    return body.detail.map((d) => `${d.loc.join(".")}: ${d.msg}`).join("; ");
  }
  return JSON.stringify(body);
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) throw new Error(detail(body));
  return body;
}

function run(action) {
  queue = queue.then(action).catch((error) => say(error.message, true));
}

// Frames: fetched once per clip as blobs, kept as object URLs while the clip is open.

function frameImage(index, n) {
  if (!state.images.has(n)) {
    const url = fetch(`/api/clips/${index}/frames/${n}`)
      .then((response) => (response.ok ? response.blob() : Promise.reject(new Error("frame"))))
      .then((blob) => URL.createObjectURL(blob));
    state.images.set(n, url);
  }
  return state.images.get(n);
}

function showFrame() {
  const index = state.clip.index;
  const n = state.frame;
  frameImage(index, n)
    .then((url) => {
      if (state.clip?.index === index && state.frame === n) $("frame-image").src = url;
    })
    .catch(() => say(`frame ${n} could not be loaded`, true));
}

async function prefetch(index) {
  for (let n = 0; n < state.clip.frames; n++) {
    if (state.clip?.index !== index) return;
    await frameImage(index, n).catch(() => null);
  }
}

function dropImages() {
  for (const url of state.images.values()) url.then(URL.revokeObjectURL, () => null);
  state.images = new Map();
}

// Clips.

async function open(index) {
  document.body.dataset.ready = "0";
  dropImages();
  const clip = await getJSON(`/api/clips/${index}`);
  state.clip = clip;
  state.frame = 0;
  state.saved = clip.marks && { ...clip.marks };
  state.marks = { ...(clip.marks ?? emptyMarks()) };
  state.hint = null;
  $("frame-image").removeAttribute("src");
  if (clip.error) {
    say(`this clip cannot be read: ${clip.error} (Q skips it)`, true);
  } else {
    say("");
    showFrame();
    prefetch(index);
    if (state.hints) loadHints(index);
  }
  render();
  document.body.dataset.clip = String(index);
  document.body.dataset.ready = "1";
}

function loadHints(index) {
  state.hint = "computing";
  getJSON(`/api/clips/${index}/hints`)
    .then((body) => body.hints, (error) => ({ error: error.message }))
    .then((hint) => {
      if (state.clip?.index !== index) return;
      state.hint = hint;
      render();
    });
}

async function leave(index, note = "") {
  if (dirty() && !state.leaving) {
    state.leaving = true;
    say("unsaved marks: E saves them, press the key again to leave them", true);
    return;
  }
  state.leaving = false;
  await open(index);
  if (note) say(note);
}

function nextClip() {
  const next = state.clip.index + 1;
  if (next < state.clips.length) return leave(next);
  const first = state.clips.findIndex((clip) => !clip.labelled);
  if (first < 0) return say(`that was the last clip; all ${state.clips.length} are labelled`);
  if (first === state.clip.index) return say("that was the last clip; this one is not labelled");
  return leave(first, "that was the last clip; back to the first unlabelled one");
}

function previousClip() {
  if (state.clip.index > 0) return leave(state.clip.index - 1);
  say("this is the first clip");
}

// Marks.

function seek(n) {
  if (!state.clip?.frames) return;
  state.frame = Math.max(0, Math.min(state.clip.frames - 1, n));
  showFrame();
  render();
}

function stamp() {
  if (!state.clip.frames) return say("this clip cannot be read (Q skips it)", true);
  const next = STAMPS.find((name) => state.marks[name] === null);
  if (!next) return say("start, end and peak are marked; W resets them", true);
  state.marks[next] = state.frame;
  say("");
  render();
}

function toggle(flag) {
  state.marks[flag] = !state.marks[flag];
  render();
}

function reset() {
  state.marks = emptyMarks();
  say("marks reset");
  render();
}

async function save() {
  const { index, name } = state.clip;
  const body = await getJSON(`/api/clips/${index}/marks`, {
    method: "PUT",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(state.marks),
  });
  state.saved = { ...body.marks };
  state.clips[index].labelled = true;
  say(`saved ${name}: ${body.line.replaceAll("\t", " ")}`);
  render();
}

const ACTIONS = {
  d: () => seek(state.frame + 1),
  a: () => seek(state.frame - 1),
  s: stamp,
  w: reset,
  e: save,
  q: nextClip,
  up: previousClip,
};
for (const [key, flag] of Object.entries(FLAG_KEYS)) ACTIONS[key] = () => toggle(flag);

function act(key) {
  if (!LEAVING_KEYS.has(key)) state.leaving = false;
  run(() => (state.clip ? ACTIONS[key]() : undefined));
}

// Drawing.

function place(id, frame) {
  const tick = $(id);
  tick.hidden = frame === null;
  if (frame !== null) tick.style.left = `${(100 * (frame + 0.5)) / state.clip.frames}%`;
}

function hintText() {
  if (state.hint === "computing") return ["computing…", ""];
  if (state.hint === null) return [state.hints ? "" : "off", ""];
  if (state.hint.error) return [state.hint.error, ""];
  const here = state.hint[state.frame];
  const text = here ? `${here.label} ${Math.round(100 * here.probability)}%` : "no face";
  const faces = state.hint.filter((h) => h);
  if (!faces.length) return [text, "(no face found in any frame)"];
  const agree = faces.filter((h) => h.label === state.clip.emotion).length;
  return [text, `(${agree} of ${faces.length} frames with a face say ${state.clip.emotion})`];
}

function render() {
  const { clip, marks } = state;
  const done = state.clips.filter((c) => c.labelled).length;
  $("progress").textContent = `${done} / ${state.clips.length} labelled`;
  $("clip-index").textContent = `clip ${clip.index + 1} / ${state.clips.length}`;
  $("clip-name").textContent = clip.name;
  $("emotion").textContent = clip.emotion;
  $("frame").textContent = clip.frames ? `${state.frame} / ${clip.frames}` : "–";
  document.body.dataset.frame = String(state.frame);
  for (const name of STAMPS) $(`mark-${name}`).textContent = marks[name] ?? "–";
  const next = STAMPS.find((name) => marks[name] === null);
  $("next-stamp").textContent = next ? `S marks the ${next}` : "all three frames marked";
  for (const flag of Object.values(FLAG_KEYS)) {
    $(`flag-${flag}`).setAttribute("aria-pressed", String(marks[flag]));
  }
  const [hint, agreement] = hintText();
  $("hint").textContent = hint;
  $("agreement").textContent = agreement;
  let saved = "no marks saved";
  if (state.saved) saved = dirty() ? "changed since saved (E saves)" : "saved";
  else if (dirty()) saved = "not saved (E saves)";
  $("saved-state").textContent = saved;
  $("saved-state").classList.toggle("unsaved", dirty());
  if (clip.frames) {
    const range = marks.start !== null && marks.end !== null && marks.end >= marks.start;
    $("range").hidden = !range;
    if (range) {
      $("range").style.left = `${(100 * marks.start) / clip.frames}%`;
      $("range").style.width = `${(100 * (marks.end - marks.start + 1)) / clip.frames}%`;
    }
    for (const name of STAMPS) place(`tick-${name}`, marks[name]);
    place("cursor", state.frame);
  } else {
    for (const id of ["range", "cursor", ...STAMPS.map((name) => `tick-${name}`)]) {
      $(id).hidden = true;
    }
  }
}

// Start: the first unlabelled clip.

async function start() {
  const body = await getJSON("/api/state");
  state.clips = body.clips;
  state.hints = body.hints;
  document.title = `attnfer annotate: ${body.root}`;
  if (body.skipped.length) {
    const skipped = $("skipped");
    skipped.textContent = `${body.skipped.length} videos left out (not in an emotion folder)`;
    skipped.title = body.skipped.map((s) => `${s.name}: ${s.reason}`).join("\n");
  }
  await open(body.start ?? 0);
  if (body.start === null) say("all clips are labelled; marks can still be changed and saved");
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const name = event.key.toLowerCase();
  const key = KEY_ALIASES[name] ?? name;
  if (!(key in ACTIONS)) return;
  event.preventDefault();
  act(key);
});

for (const button of document.querySelectorAll("button[data-key]")) {
  button.addEventListener("mousedown", (event) => event.preventDefault());
  button.addEventListener("click", () => act(button.dataset.key));
}

$("timeline").addEventListener("click", (event) => {
  if (!state.clip?.frames) return;
  const box = event.currentTarget.getBoundingClientRect();
  const n = Math.floor(((event.clientX - box.left) / box.width) * state.clip.frames);
  run(() => seek(n));
});

run(start);
