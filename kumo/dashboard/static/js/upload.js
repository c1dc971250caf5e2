// Streamed uploads with a progress bar: the file goes as the raw request body (PUT) to the
// dashboard, which streams it on to the image or object API without buffering it whole.
(function () {
  function csrf() { return document.querySelector('meta[name="csrf-token"]').content; }
  document.querySelectorAll("form[data-upload]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      var input = form.querySelector('input[type="file"]');
      if (!input || !input.files.length) { return; }  // let the server report the missing file
      ev.preventDefault();
      var file = input.files[0];
      var bar = form.querySelector("progress");
      var status = form.querySelector("[data-status]");
      var url = form.getAttribute("data-upload");
      var params = new URLSearchParams();
      new FormData(form).forEach(function (v, k) { if (typeof v === "string" && k !== "csrf_token") { params.append(k, v); } });
      params.set("filename", file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("PUT", url + (url.indexOf("?") < 0 ? "?" : "&") + params.toString());
      xhr.setRequestHeader("X-CSRF-Token", csrf());
      xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable && bar) { bar.max = e.total; bar.value = e.loaded; }
        if (status) { status.textContent = Math.round(100 * e.loaded / (e.total || 1)) + "%"; }
      };
      xhr.onload = function () {
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = {error: xhr.responseText}; }
        if (xhr.status >= 200 && xhr.status < 300 && body.location) { window.location = body.location; return; }
        if (status) { status.textContent = body.error || ("Upload failed: HTTP " + xhr.status); status.setAttribute("role", "alert"); }
      };
      xhr.onerror = function () { if (status) { status.textContent = "Upload failed: network error"; } };
      xhr.send(file);
    });
  });
})();
