"""Helpers for the deploy tests: start the real clm-server, read /metrics, pull metric names out of PromQL.

Everything talks to 127.0.0.1 only and is bounded in time. Exit code 77 means "skipped" (CTest
SKIP_RETURN_CODE), used only when a required tool is not installed.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SKIP = 77
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def skip(message):
    print(f"SKIP: {message}")
    sys.exit(SKIP)


def import_yaml():
    try:
        import yaml  # noqa: F401
    except ImportError:
        skip(f"PyYAML is not installed for {sys.executable} (Debian: apt-get install python3-yaml)")
    return yaml


def free_port():
    """A port nothing listens on right now (the kernel's choice); the caller binds it soon after."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode("utf-8")


def wait_for(what, predicate, timeout, interval=0.2):
    """Polls predicate() until it returns a truthy value, which is returned; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, urllib.error.URLError, ValueError, KeyError) as e:
            last_error = e
        time.sleep(interval)
    fail(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


class ClmServer:
    """The real clm-server binary on free 127.0.0.1 ports with a temporary data directory."""

    def __init__(self, binary, config=None, workdir=None, flags=()):
        """`flags` come first on the command line; the test's own listen addresses follow and win. When
        `flags` has a --data_dir, that one is used."""
        if not os.access(binary, os.X_OK):
            fail(f"clm-server binary {binary} is missing or not executable (build the clm-server target)")
        self.binary = binary
        self.workdir = workdir or tempfile.mkdtemp(prefix="clm-deploy-test-")
        self.data_dir = os.path.join(self.workdir, "data")
        for flag in flags:
            if flag.startswith("--data_dir="):
                self.data_dir = flag.split("=", 1)[1]
        self.grpc_port = free_port()
        self.metrics_port = free_port()
        self.log_path = os.path.join(self.workdir, "clm-server.log")
        args = [binary, *flags, f"--grpc_address=127.0.0.1:{self.grpc_port}",
                f"--metrics_address=127.0.0.1:{self.metrics_port}", f"--data_dir={self.data_dir}"]
        if config:
            args.append(f"--config={config}")
        self.args = args
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def metrics_url(self):
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def wait_ready(self, timeout=20):
        """Waits until /metrics answers and the log says the server is serving gRPC."""
        def ready():
            if self.proc.poll() is not None:
                fail(f"clm-server exited with {self.proc.returncode} during startup:\n{self.log_text()}")
            return "serving gRPC" in self.log_text() and "# TYPE" in http_get(self.metrics_url)
        wait_for("clm-server to serve gRPC and /metrics", ready, timeout)

    def metrics(self):
        return http_get(self.metrics_url)

    def stop(self, timeout=30):
        """SIGTERM, as systemd and Kubernetes stop it; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail(f"clm-server did not exit within {timeout}s of SIGTERM:\n{self.log_text()}")
        self.log.close()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ---- /metrics ----

def exported_families(metrics_text):
    """{family name: type} from the # TYPE lines of a Prometheus text exposition."""
    families = {}
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            families[name] = kind.strip()
    return families


_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+')
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def exported_samples(metrics_text):
    """{sample name: [ {label: value}, ... ]} from the sample lines."""
    samples = {}
    for line in metrics_text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if m:
            samples.setdefault(m.group(1), []).append(dict(_LABEL_RE.findall(m.group(2) or "")))
    return samples


def sample_values(metrics_text, name):
    """[(labels, value)] of the samples named `name`."""
    out = []
    for line in metrics_text.splitlines():
        m = _SAMPLE_RE.match(line)
        if m and m.group(1) == name:
            out.append((dict(_LABEL_RE.findall(m.group(2) or "")), float(line.rsplit(None, 1)[1])))
    return out


def exported_sample_names(families):
    """Every series name a scrape yields: histogram and summary families add _bucket/_sum/_count."""
    names = set()
    for name, kind in families.items():
        names.add(name)
        if kind == "histogram":
            names.update({name + "_bucket", name + "_sum", name + "_count"})
        elif kind == "summary":
            names.update({name + "_sum", name + "_count"})
    return names


# ---- PromQL ----

_PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "inf", "nan", "atan2",
}
_GROUPING_RE = re.compile(r'\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)')


def promql_references(expr):
    """[(metric name, {label: (op, value)})] for every vector selector in a PromQL expression.

    Not a full parser, but enough for the queries we write: strings, label matchers, ranges, grouping
    clauses and functions are recognised and set apart; whatever identifier remains is a metric name.
    """
    refs = []
    # Grafana/template variables: $__rate_interval, ${var}, $var.
    text = re.sub(r'\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*', 'VAR', expr)
    text = _GROUPING_RE.sub(" ", text)
    text = re.sub(r'\[[^\]]*\]', ' ', text)           # range and subquery selectors
    text = re.sub(r'#[^\n]*', ' ', text)               # comments
    token_re = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|\d+(?:ms|[smhdwy])\b|\d+(?:\.\d+)?(?:e[+-]?\d+)?'
                          r'|[a-zA-Z_:][a-zA-Z0-9_:]*|\{[^}]*\}|.', re.S)
    tokens = [t for t in token_re.findall(text) if not t.isspace()]
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok.startswith("{"):
            # A selector with no name in front: {__name__=...} is not used by us; treat as an error.
            refs.append(("", _matchers(tok)))
        elif (re.fullmatch(r'[a-zA-Z_:][a-zA-Z0-9_:]*', tok) and tok.lower() not in _PROMQL_KEYWORDS
              and tok != "VAR"):
            if nxt == "(":
                pass  # a function or aggregation
            else:
                matchers = _matchers(nxt) if nxt.startswith("{") else {}
                refs.append((tok, matchers))
                if nxt.startswith("{"):
                    i += 1
        i += 1
    return refs


def _matchers(braced):
    out = {}
    for m in re.finditer(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', braced):
        out[m.group(1)] = (m.group(2), m.group(3))
    return out
