"""Helpers for driving a real `herd serve` process from tests: start it on a free port, wait for
/health, raw HTTP requests (for what the openai client hides: status codes, headers, SSE comments),
and /metrics parsing."""
import http.client
import json
import os
import re
import signal
import subprocess
import tempfile
import time

# Llama 3's stop tokens; tests that need an exact token count ban them with logit_bias.
EOT, END_OF_TEXT, EOM = 128009, 128001, 128008
BAN_STOPS = {str(EOT): -100, str(END_OF_TEXT): -100, str(EOM): -100}


class HerdServer:
    """One `herd serve` process on 127.0.0.1 (port 0: the server picks one and prints it)."""

    def __init__(self, herd_bin, model, *args, api_key=None):
        self.args = [str(herd_bin), "serve", "--model", str(model), "--host", "127.0.0.1",
                     "--port", "0", *map(str, args)]
        self.api_key = api_key
        self.proc = None
        self.port = None
        self._clients = []
        # stderr goes to a file: the server logs every request, and an undrained pipe would block it.
        self._log = tempfile.NamedTemporaryFile(prefix="herd-serve-", suffix=".log", delete=False)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, timeout=60, wait_ready=True):
        """Starts the process and learns its port; with wait_ready, also waits for /health 200."""
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self._log)
        deadline = time.monotonic() + timeout
        while self.port is None:
            m = re.search(r"herd: listening on http://127\.0\.0\.1:(\d+)", self.log())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"herd serve exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"herd serve printed no port in {timeout} s:\n{self.log()}")
            time.sleep(0.02)
        if wait_ready:
            self.wait_health(200, timeout=deadline - time.monotonic())
        return self

    def wait_health(self, want=200, timeout=30):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"herd serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                last = self.request("GET", "/health", timeout=2)[0]
                if last == want:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"/health did not answer {want} in {timeout} s (last {last}):\n"
                           f"{self.log()}")

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout=20):
        """SIGTERM and wait; kills it if it does not exit. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def close_clients(self):
        """Closes the openai clients made by client(): an idle keep-alive connection would hold
        the server's exit back by its keep-alive timeout."""
        for c in self._clients:
            c.close()
        self._clients.clear()

    def close(self):
        self.close_clients()
        self.stop()
        self._log.close()
        try:
            os.unlink(self._log.name)
        except OSError:
            pass

    def log(self):
        with open(self._log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- clients -----------------------------------------------------------------------------------

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/v1"

    def client(self, api_key=None, **kw):
        import openai
        kw.setdefault("max_retries", 0)  # a retried 429 / 503 would hide what the server said
        kw.setdefault("timeout", 60)
        c = openai.OpenAI(base_url=self.base_url, api_key=api_key or self.api_key or "none", **kw)
        self._clients.append(c)
        return c

    def _headers(self, headers, auth):
        h = {"Content-Type": "application/json"}
        if auth and self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        h.update(headers or {})
        return h

    def request(self, method, path, body=None, headers=None, auth=True, timeout=60):
        """One HTTP request; returns (status, headers as a lower-case dict, body bytes). body may be
        a dict (sent as JSON), str or bytes."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=self._headers(headers, auth))
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def post_json(self, path, body, **kw):
        """POST; returns (status, parsed JSON body, headers)."""
        status, headers, data = self.request("POST", path, body, **kw)
        return status, json.loads(data) if data else None, headers

    def open_stream(self, path, body, timeout=60):
        """Starts a streaming POST and returns (connection, response) with the headers read; read
        SSE lines with response.readline(). Close the connection to disconnect."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        conn.request("POST", path, body=json.dumps(body), headers=self._headers(None, True))
        return conn, conn.getresponse()

    def tokenize(self, text, add_special=False):
        status, body, _ = self.post_json("/tokenize", {"content": text, "add_special": add_special})
        assert status == 200, body
        return body["tokens"]

    # -- metrics -----------------------------------------------------------------------------------

    def metrics(self):
        """/metrics as {series: value}, series being 'name' or 'name{labels}' as printed."""
        status, _, data = self.request("GET", "/metrics")
        assert status == 200, data
        return parse_metrics(data.decode())

    def wait_metrics(self, predicate, timeout=5.0):
        """Polls /metrics until predicate(metrics) holds; returns the last scrape either way."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.metrics()
            if predicate(m) or time.monotonic() > deadline:
                return m
            time.sleep(0.05)

    def wait_idle(self, timeout=5.0):
        """Waits until no sequence holds a slot or waits in the queue; returns the metrics."""
        return self.wait_metrics(lambda m: m["herd_active_sequences"] == 0
                                 and m["herd_queue_depth"] == 0, timeout)


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        out[series] = float(value)
    return out


def requests_total(metrics, route, status):
    return metrics.get(f'herd_requests_total{{route="{route}",status="{status}"}}', 0.0)


def sse_events(response):
    """Reads a raw SSE response to its end: returns (data payloads as str, comment lines)."""
    data, comments = [], []
    while True:
        line = response.readline()
        if not line:
            break
        line = line.decode().rstrip("\r\n")
        if line.startswith(":"):
            comments.append(line)
        elif line.startswith("data: "):
            data.append(line[len("data: "):])
    return data, comments


def assert_error_json(body, status=None, code=None, param=None):
    """OpenAI's error shape: {"error": {"message", "type", "param", "code"}}."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert set(err) >= {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"], err
    assert isinstance(err["type"], str) and err["type"], err
    assert err["param"] is None or isinstance(err["param"], str), err
    assert err["code"] is None or isinstance(err["code"], str), err
    if code is not None:
        assert err["code"] == code, err
    if param is not None:
        assert err["param"] == param, err
    return err
