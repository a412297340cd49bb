"""What runs in a Python session's child process: the hardening applied before exec (`prepare_child`) and
the program it runs (`RUNNER`), which reads submissions and answers with length-prefixed JSON frames."""

from __future__ import annotations


def prepare_child(memory_mb: int) -> None:  # runs in the child before exec
    import resource

    from ..node.hardening import die_with_parent, drop_all_capabilities

    die_with_parent()
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    drop_all_capabilities()


# The child. argv names the fds of its requests and replies; fd 1 and 2 are the output pipe, 0 /dev/null.
RUNNER = r"""
import ast, builtins, json, linecache, os, struct, sys, traceback, uuid, warnings

REQUESTS, REPLIES = int(sys.argv[1]), int(sys.argv[2])
for _fd in (REQUESTS, REPLIES):
    os.set_inheritable(_fd, False)
warnings.filterwarnings("ignore", message=".*non-interactive, and thus cannot be shown")


def _read_exactly(n):
    data = b""
    while len(data) < n:
        chunk = os.read(REQUESTS, n - len(data))
        if not chunk:
            os._exit(0)  # the parent is gone
        data += chunk
    return data


def _send(obj):
    data = json.dumps(obj).encode()
    data = struct.pack(">I", len(data)) + data
    view = memoryview(data)
    while view:
        view = view[os.write(REPLIES, view):]


def _disabled_input(*args, **kwargs):
    raise NotImplementedError("Python input() function is disabled.")


def _format(exc):
    if isinstance(exc, SyntaxError):  # where in the cell, not where in ast.parse
        return "".join(traceback.format_exception_only(type(exc), exc)).rstrip("\n")
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":  # this runner's frames
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip("\n")


def _figures(figdir):
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    saved = []
    for number in plt.get_fignums():
        path = os.path.join(figdir, f"{uuid.uuid4()}.png")
        plt.figure(number).savefig(path, format="png", bbox_inches="tight")
        saved.append(path)
    plt.close("all")
    return saved


namespace = {"__name__": "__main__", "__builtins__": builtins, "input": _disabled_input}
cell = 0
while True:
    request = json.loads(_read_exactly(struct.unpack(">I", _read_exactly(4))[0]))
    with __import__("contextlib").suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:  # what the last submission forked (and was killed) is reaped
            pass
    cell += 1
    name = f"<cell-{cell}>"
    code = request["code"]
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    value = error = None
    images = []
    try:
        tree = ast.parse(code, name, "exec")
        tail = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            tail = ast.Expression(tree.body.pop().value)
        exec(compile(tree, name, "exec"), namespace)
        if tail is not None:
            result = eval(compile(tail, name, "eval"), namespace)
            if result is not None:
                value = repr(result)
    except BaseException as exc:
        try:
            error = _format(exc)
        except BaseException:
            error = f"{type(exc).__name__} (its traceback could not be formatted)"
    try:
        images = _figures(request["figdir"])
    except BaseException as exc:
        error = (error + "\n" if error else "") + _format(exc)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    try:
        os.write(1, request["marker"].encode())
    except OSError:
        pass
    _send({"value": value, "error": error, "images": images})
"""
