// The demo page: a photo or the webcam's frames are drawn on the canvas and posted to
// /v1/predict as JPEG; each face gets a box and its label on the canvas, and a list item
// (#results li.face, with data-label and data-box) with one bar per emotion.

// The colours of attnfer.faces.draw.COLORS.
const COLORS = {
  angry: "#e63946",
  disgust: "#6a994e",
  fear: "#8e44ad",
  happy: "#f4a261",
  sad: "#457b9d",
  surprise: "#2a9d8f",
  neutral: "#a0a0a0",
  contempt: "#8d6e63",
};
const FALLBACK_COLOR = "#ffd60a";
const MAX_SIDE = 1280; // photos are scaled down to this (longest side) before upload
const RETRY_MS = 1000; // the webcam loop's pause after a failed request

const canvas = document.getElementById("view");
const context = canvas.getContext("2d");
const dropZone = document.getElementById("drop-zone");
const fileInput = document.getElementById("file-input");
const webcamButton = document.getElementById("webcam-button");
const statusLine = document.getElementById("status");
const results = document.getElementById("results");
const video = document.getElementById("camera");

let shown = null; // the ImageBitmap or <video> drawn on the canvas
let faces = []; // the faces drawn over it
let stream = null; // the webcam's MediaStream while it is on
let session = 0; // bumped when the source changes: answers for an older one are dropped

const percent = (p) => `${Math.round(100 * p)}%`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function setStatus(text, isError = false) {
  statusLine.textContent = text;
  statusLine.dataset.state = isError ? "error" : "ok";
}

function summary(result) {
  const n = result.faces.length;
  const found = n ? `${n} face${n > 1 ? "s" : ""}` : "No face found";
  return `${found} · ${result.width} × ${result.height} · ${Math.round(result.time_ms)} ms`;
}

function encode(source) {
  return new Promise((resolve, reject) => {
    source.toBlob(
      (blob) => (blob ? resolve(blob) : reject(new Error("the frame could not be encoded"))),
      "image/jpeg",
      0.9,
    );
  });
}

async function recognise(blob) {
  const form = new FormData();
  form.append("file", blob, "frame.jpg");
  const response = await fetch("/v1/predict", { method: "POST", body: form });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.detail || `the server answered ${response.status}`);
  }
  return body;
}

function paint() {
  context.drawImage(shown, 0, 0, canvas.width, canvas.height);
  const line = Math.max(2, Math.round(canvas.width / 320));
  const size = Math.max(12, Math.round(canvas.width / 40));
  context.lineWidth = line;
  context.font = `600 ${size}px system-ui, sans-serif`;
  context.textBaseline = "top";
  for (const face of faces) {
    const [x1, y1, x2, y2] = face.box;
    const color = COLORS[face.label] ?? FALLBACK_COLOR;
    context.strokeStyle = color;
    context.strokeRect(x1, y1, x2 - x1, y2 - y1);
    context.fillStyle = color;
    for (const [x, y] of face.landmarks ?? []) {
      context.beginPath();
      context.arc(x, y, line, 0, 2 * Math.PI);
      context.fill();
    }
    const text = `${face.label} ${percent(face.probabilities[face.label])}`;
    const height = Math.round(size * 1.3);
    const top = y1 >= height ? y1 - height : y2; // above the box, or under it at the top edge
    context.fillRect(x1 - line / 2, top, context.measureText(text).width + size / 2, height);
    context.fillStyle = "#000";
    context.fillText(text, x1 + size / 4, top + size * 0.15);
  }
  canvas.dataset.faces = faces.length;
}

function element(tag, className, text = "") {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

function faceItem(face, index) {
  const item = element("li", "face");
  item.dataset.label = face.label;
  item.dataset.index = index;
  item.dataset.box = face.box.join(",");
  const top = `${face.label} ${percent(face.probabilities[face.label])}`;
  item.append(element("div", "face-label", top));
  for (const [name, p] of Object.entries(face.probabilities)) {
    const row = element("div", "bar");
    row.dataset.emotion = name;
    const track = element("div", "track");
    const fill = element("div", "fill");
    fill.style.width = `${100 * p}%`;
    fill.style.background = COLORS[name] ?? FALLBACK_COLOR;
    track.append(fill);
    row.append(element("span", "name", name), track, element("span", "pct", percent(p)));
    item.append(row);
  }
  return item;
}

function show(found) {
  faces = found;
  results.replaceChildren(...found.map(faceItem));
  results.dataset.count = found.length;
}

async function showPhoto(file) {
  stopWebcam();
  const mine = ++session;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    setStatus(`${file.name}: the browser cannot read this file as an image`, true);
    return;
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  shown = bitmap;
  show([]);
  paint();
  dropZone.dataset.state = "photo";
  setStatus("Recognising…");
  try {
    const result = await recognise(await encode(canvas));
    if (mine !== session) return;
    show(result.faces);
    paint();
    setStatus(summary(result));
  } catch (error) {
    if (mine === session) setStatus(error.message, true);
  }
}

async function startWebcam() {
  const mine = ++session;
  if (!navigator.mediaDevices?.getUserMedia) {
    setStatus("This browser gives no webcam here (it needs https or localhost).", true);
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 } },
      audio: false,
    });
    video.srcObject = stream;
    await video.play();
  } catch (error) {
    stopWebcam();
    setStatus(`Webcam: ${error.message}`, true);
    return;
  }
  webcamButton.textContent = "Stop webcam";
  webcamButton.setAttribute("aria-pressed", "true");
  dropZone.dataset.state = "webcam";
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  shown = video;
  show([]);
  requestAnimationFrame(function frame() {
    if (mine !== session) return;
    paint();
    requestAnimationFrame(frame);
  });
  const frame = document.createElement("canvas"); // the frame being recognised
  while (mine === session) {
    frame.width = video.videoWidth;
    frame.height = video.videoHeight;
    frame.getContext("2d").drawImage(video, 0, 0);
    try {
      const result = await recognise(await encode(frame));
      if (mine !== session) return;
      show(result.faces);
      setStatus(summary(result));
    } catch (error) {
      if (mine !== session) return;
      setStatus(error.message, true);
      await sleep(RETRY_MS);
    }
  }
}

function stopWebcam() {
  if (!stream) return;
  session++;
  for (const track of stream.getTracks()) track.stop();
  stream = null;
  video.srcObject = null;
  webcamButton.textContent = "Start webcam";
  webcamButton.setAttribute("aria-pressed", "false");
}

fileInput.addEventListener("change", () => {
  if (fileInput.files.length) showPhoto(fileInput.files[0]);
  fileInput.value = ""; // choosing the same file again is a change too
});

webcamButton.addEventListener("click", () => (stream ? stopWebcam() : startWebcam()));

dropZone.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropZone.classList.add("dragging");
});
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("dragging");
  const [file] = event.dataTransfer.files;
  if (file) showPhoto(file);
});
