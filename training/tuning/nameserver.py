"""The run's Pyro4 nameserver: starting it, finding it, publishing and fetching the run settings through it.

The driver starts hpbandster's nameserver (127.0.0.1 and a free port unless a host is given) and publishes the run
settings there under :data:`SETTINGS_NAME`; every worker, local or on another machine, finds the nameserver by
HOST:PORT, fetches the settings by run id, and watches the nameserver while it serves. Nothing waits forever:
every wait has a time-out in seconds and ends in a TimeoutError naming the address or run id.
"""
import contextlib
import socket
import threading
import time

from galsr.training.tuning.pyro_compat import to_builtins

#: Name under which the driver publishes the run settings in the nameserver (format with run_id).
SETTINGS_NAME = "galsr.run_{run_id}.settings"


def parse_nameserver(text):
    """Split ``"HOST:PORT"`` into (host: str, port: int, 1..65535); ValueError naming the nameserver address."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"nameserver: expected HOST:PORT (e.g. 127.0.0.1:45123), got {text!r}")
    return host.strip("[]"), int(port)


def local_address_towards(host):
    """IP address (str) of this machine's interface that routes to ``host`` (127.0.0.1 for a loopback nameserver)."""
    if host in ("localhost", "::1") or host.startswith("127."):
        return "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, 9))  # UDP connect sends nothing; it only picks the route
        return s.getsockname()[0]


@contextlib.contextmanager
def running_nameserver(run_id, working_directory, host="127.0.0.1", port=0):
    """Run hpbandster's nameserver for ``run_id`` while the block runs; yields (host: str, port: int).

    Args:
        run_id: str, hpbandster run id.
        working_directory: str or Path, where hpbandster keeps the nameserver's credentials file.
        host: str, address to listen on (127.0.0.1: this machine only; a LAN address lets other machines join).
        port: int, port to listen on (0 = a free one).
    """
    from hpbandster.core.nameserver import NameServer

    ns = NameServer(run_id=run_id, working_directory=str(working_directory), host=host, port=int(port))
    address = ns.start()
    try:
        yield address
    finally:
        try:
            ns.shutdown()
        except FileNotFoundError:  # its credentials file was removed under it
            ns.conf_fn = None


def _ns_proxy(host, port, timeout):
    """A Pyro4 proxy of the nameserver at host:port with a per-call time-out (float [s]), not yet connected."""
    import Pyro4

    proxy = Pyro4.Proxy(f"PYRO:Pyro.NameServer@{host}:{int(port)}")
    proxy._pyroTimeout = timeout
    return proxy


def ping_nameserver(host, port, timeout=5.0):
    """True if a Pyro4 nameserver answers at host:port within ``timeout`` (float [s])."""
    import Pyro4

    try:
        with _ns_proxy(host, port, timeout) as ns:
            ns.ping()
        return True
    except (Pyro4.errors.PyroError, OSError):
        return False


def wait_for_nameserver(host, port, timeout=60.0, interval=1.0):
    """Block until the nameserver at host:port answers, polling every ``interval`` [s]; TimeoutError (naming the
    address) after ``timeout`` [s]."""
    deadline = time.monotonic() + timeout
    while True:
        if ping_nameserver(host, port, timeout=min(5.0, max(timeout, 0.5))):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no hpbandster/Pyro4 nameserver answered at {host}:{port} within {timeout:g} s "
                               "(is `galsr tune` running, and are host, port and firewall right?)")
        time.sleep(interval)


def watch_nameserver(host, port, timeout, stop, on_lost, interval=2.0):
    """Thread body: call ``on_lost()`` once the nameserver at host:port has been unreachable for ``timeout`` [s].

    Pings every ``interval`` [s] until the threading.Event ``stop`` is set, or until ``on_lost()`` returns True
    (it returns False when it cannot act yet; the watch then goes on).
    """
    lost_since = None
    while not stop.wait(interval):
        if ping_nameserver(host, port, timeout=min(5.0, timeout)):
            lost_since = None
            continue
        lost_since = lost_since or time.monotonic()
        if time.monotonic() - lost_since >= timeout and on_lost():
            return


class RunSettings:
    """Pyro4 object publishing the run settings to workers (``galsr.run_<id>.settings`` in the nameserver)."""

    def __init__(self, settings):
        self._settings = to_builtins(settings)

    def get(self):
        """The settings dict (builtin types)."""
        return self._settings


@contextlib.contextmanager
def published_settings(settings, host, ns_host, ns_port, run_id):
    """Serve ``settings`` (dict) as a :class:`RunSettings` on a Pyro4 daemon thread at ``host`` and register it in
    the nameserver at ns_host:ns_port under :data:`SETTINGS_NAME` while the block runs."""
    import Pyro4

    daemon = Pyro4.Daemon(host=host)
    try:
        uri = daemon.register(Pyro4.expose(RunSettings)(settings))
        with Pyro4.locateNS(host=ns_host, port=ns_port) as ns:
            ns.register(SETTINGS_NAME.format(run_id=run_id), uri)
        threading.Thread(target=daemon.requestLoop, name="galsr-tune-settings", daemon=True).start()
        yield daemon
    finally:
        daemon.shutdown()


def fetch_run_settings(host, port, run_id, timeout=60.0, interval=1.0):
    """The settings dict the driver of run ``run_id`` published in the nameserver at host:port.

    Waits for the nameserver, then for the run, each up to ``timeout`` [s], polling every ``interval`` [s]; raises
    TimeoutError naming the address or the run id.
    """
    import Pyro4

    wait_for_nameserver(host, port, timeout=timeout, interval=interval)
    name = SETTINGS_NAME.format(run_id=run_id)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with _ns_proxy(host, port, 5.0) as ns:
                uri = ns.lookup(name)
            with Pyro4.Proxy(uri) as settings:
                settings._pyroTimeout = 10.0
                return dict(settings.get())
        except (Pyro4.errors.PyroError, OSError):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"nameserver {host}:{port} has no run with run id {run_id!r} "
                                   f"(waited {timeout:g} s; the driver prints the run id)") from None
            time.sleep(interval)


def check_port_free(host, port):
    """ValueError naming ``host:port`` when ``port`` (int; 0 = any free one, not checked) cannot be bound there,
    e.g. because another program listens on it."""
    import socket

    if not port:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the nameserver binds: TIME_WAIT is fine
        try:
            sock.bind((host, int(port)))
        except OSError as exc:
            raise ValueError(f"port {port} on {host} is not available for the tuning nameserver ({exc.strerror}); "
                             f"pick another port, or 0 for a free one") from None
