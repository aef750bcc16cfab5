"""Static check of a NixOS VM test driver script (stdlib only).

usage: python3 pycheck.py SCRIPT NODE[,NODE...]

Fails when the script does not parse, loads a name that is never bound
(scope-insensitive: a typo check, not a full analysis), or calls a method
on a machine that the NixOS test driver's Machine does not have.
"""
import ast
import builtins
import sys

DRIVER_GLOBALS = {
    "start_all", "subtest", "machines", "driver", "log", "retry", "join_all",
    "serial_stdout_on", "serial_stdout_off", "polling_condition", "create_machine",
    "vlans", "test_script", "run_tests", "t", "dump_tty_contents",
}

MACHINE_METHODS = {
    "start", "shutdown", "crash", "reboot", "succeed", "fail", "execute",
    "wait_for_unit", "wait_until_succeeds", "wait_until_fails", "wait_for_open_port",
    "wait_for_closed_port", "wait_for_open_unix_socket", "wait_for_file", "wait_for_console_text",
    "wait_for_text", "wait_for_x", "wait_for_window", "systemctl", "require_unit_state",
    "get_unit_info", "get_unit_property", "copy_from_host", "copy_from_host_via_shell",
    "copy_from_vm", "send_chars", "send_key", "send_console", "send_monitor_command",
    "sleep", "block", "unblock", "screenshot", "get_screen_text", "forward_port",
    "switch_root", "console_interact", "shell_interact", "wait_for_shutdown", "is_up",
    "name", "state_dir", "out_dir",
}


def main() -> int:
    path, nodes = sys.argv[1], set(filter(None, sys.argv[2].split(",")))
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    bound = set(dir(builtins)) | DRIVER_GLOBALS | nodes
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            bound.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(n.name)
        elif isinstance(n, ast.arg):
            bound.add(n.arg)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            bound.update(a.asname or a.name.split(".")[0] for a in n.names)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            bound.add(n.name)
    problems = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in bound:
            problems.append(f"line {n.lineno}: name {n.id!r} is never bound")
        if (
            isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name)
            and n.value.id in nodes
            and n.attr not in MACHINE_METHODS
        ):
            problems.append(f"line {n.lineno}: {n.value.id}.{n.attr} is not a test-driver Machine method")
    for p in problems:
        print(f"{path}: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
