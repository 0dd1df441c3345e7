// colorize serve: the page. Photos live on the server by opaque id; the page keeps each photo's
// hints (in the photo's own pixels, as `colorize apply --hints` reads them) and asks for a
// preview after every change, one request at a time per photo (the latest state wins).
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

const state = {
  health: null,
  photos: [], // {id, name, width, height, previewWidth, previewHeight, defaultSize, points, ...}
  current: null,
  selected: -1, // index of the selected hint of the current photo
  reference: null, // {id, name, colors}
  messageFrom: null, // the photo whose failed preview the message tells of
  drag: null,
};

// Messages. `from` is the photo whose preview failed, if that is what the message says: its next
// preview clears it, and nothing else (an upload's error stays until the user moves on).
function showMessage(text, from = null) {
  const box = $("message");
  box.textContent = text;
  box.hidden = !text;
  state.messageFrom = text ? from : null;
}

function setStatus(text) {
  $("status").textContent = text;
}

async function errorOf(response) {
  try {
    const body = await response.json();
    return body.error || `HTTP ${response.status}`;
  } catch (_) {
    return `HTTP ${response.status}`;
  }
}

async function api(path, options) {
  const response = await fetch(path, options);
  if (!response.ok) throw new Error(await errorOf(response));
  return response;
}

// The photo list.
function addEntry(info) {
  const photo = {
    id: info.id || null,
    name: info.name,
    points: [],
    error: info.error || null,
    busy: false,
    dirty: false,
    version: 0,
    colorUrl: null,
  };
  takeInfo(photo, info);
  state.photos.push(photo);
  renderList();
  return photo;
}

function takeInfo(photo, info) {
  if (info.width) {
    photo.width = info.width;
    photo.height = info.height;
    photo.previewWidth = info.preview_width;
    photo.previewHeight = info.preview_height;
    photo.defaultSize = info.default_size;
  }
}

function renderList() {
  const list = $("photos");
  list.replaceChildren();
  for (const photo of state.photos) {
    const item = document.createElement("li");
    item.textContent = photo.name;
    item.dataset.name = photo.name;
    if (photo === state.current) item.classList.add("current");
    if (photo.error) {
      item.classList.add("bad");
      const why = document.createElement("span");
      why.className = "why";
      why.textContent = photo.error;
      item.append(why);
    } else {
      if (!photo.id) item.append(" (reading...)");
      // A photo still reading can be chosen too: its upload shows it when it is read.
      item.addEventListener("click", () => choose(photo));
    }
    list.append(item);
  }
}

async function upload(files) {
  const queue = [...files].map((file) => [file, addEntry({ name: file.name })]);
  for (const [file, photo] of queue) {
    const form = new FormData();
    form.append("photo", file, file.name);
    try {
      const info = await (await api("/api/photos", { method: "POST", body: form })).json();
      const listed = state.photos.find((p) => p.id === info.id);
      if (listed) {
        // The page's first listing of the server's photos already brought this one in.
        state.photos.splice(state.photos.indexOf(photo), 1);
        if (state.current === photo) await choose(listed);
        else renderList();
        continue;
      }
      photo.id = info.id;
      takeInfo(photo, info);
      renderList();
      if (!state.current || state.current === photo) await choose(photo);
    } catch (error) {
      photo.error = error.message;
      if (state.current === photo) {
        // Chosen while it uploaded: the page is left showing nothing, and says so.
        state.current = null;
        $("empty").hidden = false;
        setStatus("");
      }
      renderList();
      showMessage(`${file.name}: ${error.message}`);
    }
  }
}

async function choose(photo) {
  state.current = photo;
  state.selected = -1;
  renderList();
  showMessage("");
  if (!photo.id) {
    // Chosen while its upload runs: the upload chooses it again when the server has it.
    $("stage").hidden = true;
    $("empty").hidden = true;
    setStatus(`reading ${photo.name}...`);
    return;
  }
  if (!photo.width) {
    try {
      takeInfo(photo, await (await api(`/api/photos/${photo.id}`)).json());
    } catch (error) {
      photo.error = error.message;
      state.current = null;
      renderList();
      showMessage(`${photo.name}: ${error.message}`);
      return;
    }
  }
  $("empty").hidden = true;
  $("stage").hidden = false;
  $("gray").src = `/api/photos/${photo.id}/gray`;
  if (photo.colorUrl) $("color").src = photo.colorUrl;
  else $("color").removeAttribute("src");
  renderMarks();
  refresh(photo);
}

// Previews: one request in flight per photo; a change while it runs asks again afterwards.
function hintsDocument(photo) {
  return {
    points: photo.points.map((p) => {
      const point = { x: p.x, y: p.y, color: p.color };
      if (p.size) point.size = p.size;
      return point;
    }),
  };
}

function guideBody(photo, extra) {
  const body = hintsDocument(photo);
  if (state.reference) body.reference = state.reference.id;
  return JSON.stringify(Object.assign(body, extra || {}));
}

async function refresh(photo) {
  if (!photo || !photo.id) return;
  if (photo.busy) {
    photo.dirty = true;
    return;
  }
  photo.busy = true;
  photo.dirty = false;
  document.body.dataset.busy = "1";
  const points = photo.points.length;
  const started = performance.now();
  try {
    const response = await api(`/api/photos/${photo.id}/preview`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: guideBody(photo),
    });
    const url = URL.createObjectURL(await response.blob());
    if (photo.colorUrl) URL.revokeObjectURL(photo.colorUrl);
    photo.colorUrl = url;
    photo.version += 1;
    if (photo === state.current) {
      const image = $("color");
      image.dataset.points = String(points);
      image.dataset.version = String(photo.version);
      image.src = url;
      setStatus(`preview in ${Math.round(performance.now() - started)} ms`);
      if (!photo.dirty && state.messageFrom === photo) showMessage("");
    }
  } catch (error) {
    if (photo === state.current) showMessage(error.message, photo);
  } finally {
    photo.busy = false;
    if (photo.dirty) refresh(photo);
    else if (!state.photos.some((p) => p.busy)) document.body.dataset.busy = "0";
  }
}

// Hints on the photo.
function toPhoto(event) {
  const box = $("marks").getBoundingClientRect();
  const photo = state.current;
  const x = Math.floor(((event.clientX - box.left) / box.width) * photo.width);
  const y = Math.floor(((event.clientY - box.top) / box.height) * photo.height);
  return {
    x: Math.min(Math.max(x, 0), photo.width - 1),
    y: Math.min(Math.max(y, 0), photo.height - 1),
  };
}

function hex(r, g, b) {
  return "#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("");
}

// The colour the current preview shows at a photo pixel: what the model predicts there.
function predictedAt(x, y) {
  const image = $("color");
  const photo = state.current;
  if (!image.complete || !image.naturalWidth) return "#808080";
  const canvas = document.createElement("canvas");
  canvas.width = 1;
  canvas.height = 1;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  const sx = Math.floor((x / photo.width) * image.naturalWidth);
  const sy = Math.floor((y / photo.height) * image.naturalHeight);
  context.drawImage(image, sx, sy, 1, 1, 0, 0, 1, 1);
  const [r, g, b] = context.getImageData(0, 0, 1, 1).data;
  return hex(r, g, b);
}

function renderMarks() {
  const svg = $("marks");
  const photo = state.current;
  svg.replaceChildren();
  if (!photo || !photo.width) return;
  svg.setAttribute("viewBox", `0 0 ${photo.width} ${photo.height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const shown = svg.getBoundingClientRect().width;
  const scale = shown ? photo.width / shown : 1;
  photo.points.forEach((point, index) => {
    const size = point.size || photo.defaultSize;
    const mark = document.createElementNS(SVG, "rect");
    const side = Math.max(size, 12 * scale);
    mark.setAttribute("x", point.x + 0.5 - side / 2);
    mark.setAttribute("y", point.y + 0.5 - side / 2);
    mark.setAttribute("width", side);
    mark.setAttribute("height", side);
    mark.setAttribute("fill", point.color);
    mark.setAttribute("vector-effect", "non-scaling-stroke");
    mark.classList.add("hint");
    if (index === state.selected) mark.classList.add("selected");
    mark.dataset.index = String(index);
    svg.append(mark);
  });
  renderTools();
}

function renderTools() {
  const photo = state.current;
  const tools = $("hint-tools");
  const point = photo && photo.points[state.selected];
  tools.hidden = !point;
  if (!point) return;
  $("hint-color").value = point.color;
  const size = $("hint-size");
  size.max = String(Math.max(20, Math.round(Math.min(photo.width, photo.height) / 4)));
  size.value = String(point.size || photo.defaultSize);
  $("hint-size-value").textContent = `${point.size || photo.defaultSize} px`;
  const suggested = $("suggested");
  suggested.replaceChildren();
  const colors = [predictedAt(point.x, point.y)];
  if (state.reference) colors.push(...state.reference.colors);
  for (const color of colors) suggested.append(swatch(color, () => setColor(color)));
}

function swatch(color, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "swatch";
  button.title = color;
  button.style.background = color;
  button.addEventListener("click", onClick);
  return button;
}

function changed() {
  renderMarks();
  refresh(state.current);
}

function setColor(color) {
  const point = state.current && state.current.points[state.selected];
  if (!point) return;
  point.color = color;
  changed();
}

function onPointerDown(event) {
  const photo = state.current;
  if (!photo || !photo.width || event.button !== 0) return;
  const index = event.target.dataset.index;
  if (index !== undefined) {
    state.selected = Number(index);
    state.drag = { pointer: event.pointerId, moved: false };
    $("marks").setPointerCapture(event.pointerId);
    renderMarks();
    return;
  }
  if (state.health && !state.health.takes_hints) {
    showMessage("this model takes no hints: run colorize serve with a hint model");
    return;
  }
  const { x, y } = toPhoto(event);
  photo.points.push({ x, y, color: predictedAt(x, y), size: null });
  state.selected = photo.points.length - 1;
  changed();
}

function onPointerMove(event) {
  if (!state.drag || state.drag.pointer !== event.pointerId) return;
  const point = state.current.points[state.selected];
  Object.assign(point, toPhoto(event));
  state.drag.moved = true;
  changed();
}

function onPointerUp(event) {
  if (!state.drag || state.drag.pointer !== event.pointerId) return;
  state.drag = null;
}

function onWheel(event) {
  const index = event.target.dataset.index;
  if (index === undefined) return;
  event.preventDefault();
  const photo = state.current;
  const point = photo.points[Number(index)];
  const size = point.size || photo.defaultSize;
  const step = Math.max(1, Math.round(size * 0.15));
  point.size = Math.max(1, Math.min(4096, size + (event.deltaY < 0 ? step : -step)));
  state.selected = Number(index);
  changed();
}

function deleteSelected() {
  const photo = state.current;
  if (!photo || state.selected < 0) return;
  photo.points.splice(state.selected, 1);
  state.selected = -1;
  changed();
}

// Reference, hints files, downloads.
async function setReference(file) {
  if (state.health && !state.health.takes_hints) {
    showMessage("this model takes no reference: run colorize serve with a hint model");
    return;
  }
  const form = new FormData();
  form.append("reference", file, file.name);
  try {
    state.reference = await (await api("/api/references", { method: "POST", body: form })).json();
  } catch (error) {
    showMessage(`${file.name}: ${error.message}`);
    return;
  }
  $("reference").hidden = false;
  $("reference-name").textContent = state.reference.name;
  const palette = $("palette");
  palette.replaceChildren(...state.reference.colors.map((c) => swatch(c, () => setColor(c))));
  renderTools();
  refresh(state.current);
}

function clearReference() {
  state.reference = null;
  $("reference").hidden = true;
  renderTools();
  refresh(state.current);
}

function save(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function stem(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(0, dot) : name;
}

function saveHints() {
  const photo = state.current;
  if (!photo) return;
  const text = JSON.stringify(hintsDocument(photo), null, 1) + "\n";
  save(new Blob([text], { type: "application/json" }), `${stem(photo.name)}.json`);
}

async function loadHints(file) {
  const photo = state.current;
  if (!photo) return;
  try {
    const document_ = JSON.parse(await file.text());
    if (!Array.isArray(document_.points)) throw new Error('missing field "points"');
    photo.points = document_.points.map((p) => ({ x: p.x, y: p.y, color: p.color, size: p.size }));
  } catch (error) {
    showMessage(`${file.name}: ${error.message}`);
    return;
  }
  state.selected = -1;
  changed();
}

function downloadName(response, fallback) {
  const header = response.headers.get("content-disposition") || "";
  const match = header.match(/filename="([^"]+)"/);
  return match ? match[1] : fallback;
}

async function download() {
  const photo = state.current;
  if (!photo || !photo.id) return;
  setStatus("colorizing at full resolution...");
  try {
    const response = await api(`/api/photos/${photo.id}/download`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: guideBody(photo, $("format").value ? { format: $("format").value } : {}),
    });
    save(await response.blob(), downloadName(response, photo.name));
    setStatus("downloaded");
  } catch (error) {
    showMessage(error.message);
  }
}

async function downloadAll() {
  const photos = state.photos.filter((p) => p.id && !p.error);
  if (!photos.length) return;
  setStatus(`colorizing ${photos.length} photos at full resolution...`);
  const body = {
    photos: photos.map((p) => Object.assign({ id: p.id }, hintsDocument(p))),
    reference: state.reference ? state.reference.id : null,
  };
  if ($("format").value) body.format = $("format").value;
  try {
    const response = await api("/api/zip", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    save(await response.blob(), "colorized.zip");
    setStatus("downloaded");
  } catch (error) {
    showMessage(error.message);
  }
}

// Wiring.
function dropZone(zone, onFiles) {
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files.length) onFiles(event.dataTransfer.files);
  });
}

function moveSlider() {
  const value = $("slider").value;
  $("color").style.clipPath = `inset(0 0 0 ${value}%)`;
  $("divider").style.left = `${value}%`;
}

async function start() {
  document.body.dataset.busy = "0";
  dropZone($("drop"), upload);
  dropZone($("reference-drop"), (files) => setReference(files[0]));
  $("pick").addEventListener("change", (event) => {
    upload(event.target.files);
    event.target.value = "";
  });
  $("reference-pick").addEventListener("change", (event) => {
    if (event.target.files.length) setReference(event.target.files[0]);
    event.target.value = "";
  });
  $("reference-clear").addEventListener("click", clearReference);
  $("hints-pick").addEventListener("change", (event) => {
    if (event.target.files.length) loadHints(event.target.files[0]);
    event.target.value = "";
  });
  $("load-hints").addEventListener("click", () => $("hints-pick").click());
  $("save-hints").addEventListener("click", saveHints);
  $("clear-hints").addEventListener("click", () => {
    if (!state.current) return;
    state.current.points = [];
    state.selected = -1;
    changed();
  });
  $("download").addEventListener("click", download);
  $("download-all").addEventListener("click", downloadAll);
  $("slider").addEventListener("input", moveSlider);
  const marks = $("marks");
  marks.addEventListener("pointerdown", onPointerDown);
  marks.addEventListener("pointermove", onPointerMove);
  marks.addEventListener("pointerup", onPointerUp);
  marks.addEventListener("pointercancel", onPointerUp);
  marks.addEventListener("wheel", onWheel, { passive: false });
  $("hint-color").addEventListener("input", (event) => setColor(event.target.value));
  $("hint-size").addEventListener("input", (event) => {
    const point = state.current && state.current.points[state.selected];
    if (!point) return;
    point.size = Number(event.target.value);
    changed();
  });
  $("hint-delete").addEventListener("click", deleteSelected);
  document.addEventListener("keydown", (event) => {
    if ((event.key === "Delete" || event.key === "Backspace") && event.target === document.body) {
      deleteSelected();
    }
  });
  $("color").addEventListener("load", renderTools);
  window.addEventListener("resize", renderMarks);
  try {
    state.health = await (await api("/api/health")).json();
    const hinting = state.health.takes_hints ? "hints" : "no hints (automatic colour only)";
    $("model").textContent =
      `${state.health.model.split("/").pop()} on ${state.health.backend}, ` +
      `render size ${state.health.render_size}, ${hinting}`;
    const listed = await (await api("/api/photos")).json();
    // A photo dropped while this list was on its way is on the page already.
    for (const info of listed.photos) {
      if (!state.photos.some((p) => p.id === info.id)) addEntry(info);
    }
    // A photo still uploading has no id yet: its upload chooses it when it has one.
    const first = state.photos.find((p) => p.id && !p.error);
    if (first && !state.current) await choose(first); // a photo the user chose stays chosen
  } catch (error) {
    showMessage(error.message);
  }
}

start();
