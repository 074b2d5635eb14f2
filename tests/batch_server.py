"""A loopback OpenAI Batch API: files (multipart upload, content), batches (create, retrieve, cancel) and
direct chat completions, with scripted delays, failed lines, expiry and cancellation. Faithful enough that
the real ``openai`` SDK's batch calls work against it (tests/test_batch_api.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from .loopback import JsonHandler, LoopbackServer

Answer = Callable[[dict[str, Any]], str]
USAGE = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
"""Every reply's usage, so tests compute costs exactly."""


def _completion(content: str, model: str = "scripted") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": USAGE,
    }


class BatchServer(LoopbackServer):
    """`answer(body)` answers each request. Scripted faults:

    - `polls`: how many retrieves a batch stays ``in_progress`` before it completes;
    - `hold`: while set, batches stay ``in_progress`` however often they are polled;
    - `expire`: indexes (0, 1, ...) of created batches that end ``expired`` with no output;
    - `fail_line(custom_id, batch_index)`: True puts that line in the error file with status 500;

    and hostile ones (issue 35):

    - `faults[kind]`: (status, headers) answered, in order, before the real reply to a ``poll``
      (``GET /batches/ID``) or a ``content`` download (``GET /files/ID/content``);
    - `serve_file(file_id, data)`: what a download sends instead, as (body, extra headers);
    - `ids[name]`: the id reported for ``upload`` (an input file), ``batch`` or ``output`` (its output file);
    - `status_text`: the status a batch shows while in progress; `reply_model`: the ``model`` of each reply.

    `requests` logs (time, method, path with its query) of every request.
    """

    def __init__(self, answer: Answer, polls: int = 1) -> None:
        self.answer = answer
        self.polls = polls
        self.hold = threading.Event()
        self.expire: set[int] = set()
        self.fail_line: Callable[[str, int], bool] = lambda _cid, _index: False
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.retrieves: dict[str, int] = {}
        self.direct_calls = 0
        self.uploads = 0
        self.refuse_uploads = False
        self.faults: dict[str, list[tuple[int, dict[str, str]]]] = {"poll": [], "content": []}
        self.serve_file: Callable[[str, bytes], tuple[bytes, dict[str, str]]] | None = None
        self.ids: dict[str, str] = {}
        self.status_text = "in_progress"
        self.reply_model: str | None = None
        self.requests: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(JsonHandler):
            def handle(self) -> None:
                try:
                    super().handle()
                except ConnectionResetError:  # a client that hung up at its cap, mid-download
                    self.close_connection = True

            def _send(self, status: int, payload: Any) -> None:
                self.send_json(status, json.dumps(payload).encode())

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def _fault(self, kind: str) -> bool:
                with server._lock:
                    queue = server.faults.get(kind) or []
                    fault = queue.pop(0) if queue else None
                if fault is not None:
                    self.send_json(fault[0], b'{"error": {"message": "scripted fault"}}', fault[1])
                return fault is not None

            def do_GET(self) -> None:
                server.requests.append((time.monotonic(), "GET", self.path))
                path = self.path.split("?", 1)[0]
                if path.endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
                elif "/files/" in path and path.endswith("/content"):
                    if self._fault("content"):
                        return
                    file_id = path.split("/files/", 1)[1].rsplit("/", 1)[0]
                    data = server.files.get(file_id)
                    if data is None:
                        self._send(404, {"error": {"message": "no such file"}})
                        return
                    headers: dict[str, str] = {}
                    if server.serve_file is not None:
                        data, headers = server.serve_file(file_id, data)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    try:
                        self.wfile.write(data)
                    except (BrokenPipeError, ConnectionResetError):  # a client that stopped reading at its cap
                        self.close_connection = True
                elif "/batches/" in path and self._fault("poll"):
                    return
                elif "/batches/" in path:
                    self._send(*server.retrieve(path.rsplit("/", 1)[1]))
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                server.requests.append((time.monotonic(), "POST", self.path))
                path = self.path.split("?", 1)[0]
                raw = self._body()
                if path.endswith("/files") and server.refuse_uploads:
                    self._send(400, {"error": {"message": "scripted refusal: file too large"}})
                elif path.endswith("/files"):
                    self._send(200, server.upload(self.headers["Content-Type"], raw))
                elif path.endswith("/batches"):
                    self._send(*server.create(json.loads(raw)))
                elif path.endswith("/cancel"):
                    self._send(*server.cancel(path.rsplit("/", 2)[1]))
                elif path.endswith("/chat/completions"):
                    with server._lock:
                        server.direct_calls += 1
                    self._send(200, _completion(server.answer(json.loads(raw))))
                else:
                    self._send(404, {"error": {"message": "not found"}})

        super().__init__(Handler)

    def upload(self, content_type: str, raw: bytes) -> dict[str, Any]:
        message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        parts = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
        data = parts["file"].get_payload(decode=True)
        assert parts["purpose"].get_payload(decode=True) == b"batch"
        with self._lock:
            self.uploads += 1
            file_id = self.ids.get("upload", f"file-in-{self.uploads}")
            self.files[file_id] = data
        return {"id": file_id, "object": "file", "bytes": len(data), "created_at": 0, "filename": "requests.jsonl",
                "purpose": "batch", "status": "processed"}  # fmt: skip

    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("input_file_id") not in self.files:
            return 400, {"error": {"message": "unknown input_file_id"}}
        with self._lock:
            index = len(self.batches)
            batch_id = self.ids.get("batch", f"batch_{index}")
            lines = [json.loads(line) for line in self.files[body["input_file_id"]].splitlines() if line.strip()]
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
                "input_file_id": body["input_file_id"], "completion_window": body["completion_window"],
                "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": int(time.time()),
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0}, "_index": index, "_lines": lines,
            }  # fmt: skip
        return 200, self._public(batch_id)

    def _public(self, batch_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.batches[batch_id].items() if not k.startswith("_")}

    def retrieve(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        if batch_id not in self.batches:
            return 404, {"error": {"message": "no such batch"}}
        with self._lock:
            batch = self.batches[batch_id]
            self.retrieves[batch_id] = self.retrieves.get(batch_id, 0) + 1
            if batch["status"] in ("validating", self.status_text):
                if self.hold.is_set() or self.retrieves[batch_id] <= self.polls:
                    batch["status"] = self.status_text
                else:
                    self._finish(batch_id, batch)
        return 200, self._public(batch_id)

    def _finish(self, batch_id: str, batch: dict[str, Any]) -> None:
        if batch["_index"] in self.expire:
            batch["status"] = "expired"
            return
        out, err = [], []
        for line in batch["_lines"]:
            cid = line["custom_id"]
            if self.fail_line(cid, batch["_index"]):
                err.append({"id": f"r-{cid}", "custom_id": cid, "response": {"status_code": 500, "body":
                            {"error": {"message": "scripted line failure"}}}, "error": None})  # fmt: skip
            else:
                body = _completion(self.answer(line["body"]), self.reply_model or str(line["body"].get("model")))
                out.append({"id": f"r-{cid}", "custom_id": cid, "response": {"status_code": 200, "body": body},
                            "error": None})  # fmt: skip
        for key, rows in (("output_file_id", out), ("error_file_id", err)):
            if rows:
                file_id = f"file-{key.split('_')[0]}-{batch_id}"
                file_id = self.ids.get("output", file_id) if key == "output_file_id" else file_id
                self.files[file_id] = "".join(json.dumps(r) + "\n" for r in rows).encode()
                batch[key] = file_id
        batch["status"] = "completed"
        batch["request_counts"] = {"total": len(batch["_lines"]), "completed": len(out), "failed": len(err)}

    def cancel(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        if batch_id not in self.batches:
            return 404, {"error": {"message": "no such batch"}}
        with self._lock:
            self.batches[batch_id]["status"] = "cancelled"
        return 200, self._public(batch_id)

    @property
    def created(self) -> int:
        return len(self.batches)
