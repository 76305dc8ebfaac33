#!/usr/bin/env python3
"""deploy/systemd/clm-server.service: systemd accepts it, its hardening scores "OK", and the real
clm-server accepts its command line.

systemd-analyze verify and `security --offline` read unit files without a running systemd, so they work in
a container. ExecStart is pointed at the built binary (verify checks that the binary exists).
"""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import tempfile

import clmtest

# systemd-analyze security reports exposure 0.0 (best) .. 10.0; --threshold takes tenths. 2.0 is "OK".
MAX_EXPOSURE_TENTHS = 20


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    args = parser.parse_args()
    unit_path = os.path.join(clmtest.REPO, "deploy", "systemd", "clm-server.service")
    with open(unit_path) as f:
        unit = f.read()
    exec_start = re.search(r'^ExecStart=(.*)$', unit, re.M)
    if not exec_start:
        clmtest.fail("no ExecStart= in the unit")
    argv = shlex.split(exec_start.group(1))
    if argv[0] != "/usr/local/bin/clm-server":
        clmtest.fail(f"ExecStart runs {argv[0]}, expected /usr/local/bin/clm-server")
    for flag in ("--data_dir=/var/lib/clm", "--config=/etc/clm/clm.textproto"):
        if flag not in argv:
            clmtest.fail(f"ExecStart lacks {flag}: {argv}")
    for required in ("StateDirectory=clm", "ReadWritePaths=/var/lib/clm", "KillSignal=SIGTERM",
                     "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
                     "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes"):
        if required not in unit:
            clmtest.fail(f"the unit lacks {required.strip()!r}")

    workdir = tempfile.mkdtemp(prefix="clm-systemd-test-")
    tool = shutil.which("systemd-analyze")
    if tool is None:
        print("systemd-analyze not found (Debian: systemd): skipping verify and security")
    else:
        test_unit = os.path.join(workdir, "clm-server.service")
        with open(test_unit, "w") as f:
            f.write(unit.replace("/usr/local/bin/clm-server", os.path.abspath(args.server)))
        verify = subprocess.run([tool, "verify", test_unit], capture_output=True, text=True, timeout=60)
        # verify exits 0 on mere warnings (unknown keys, keys in the wrong section): any output is a failure.
        output = (verify.stdout + verify.stderr).strip()
        if verify.returncode != 0 or output:
            clmtest.fail(f"systemd-analyze verify (exit {verify.returncode}):\n{output}")
        print("systemd-analyze verify: no warnings")
        security = subprocess.run([tool, "security", "--offline=yes", f"--threshold={MAX_EXPOSURE_TENTHS}",
                                   "--no-pager", test_unit], capture_output=True, text=True, timeout=60)
        overall = re.search(r'Overall exposure level.*', security.stdout)
        if security.returncode != 0:
            clmtest.fail(f"systemd-analyze security: exposure above {MAX_EXPOSURE_TENTHS / 10}:\n{security.stdout}"
                         f"{security.stderr}")
        print(f"systemd-analyze security: {overall.group(0) if overall else 'ok'}")

    # The real server accepts ExecStart's flags (paths moved into a temporary directory, ports made free).
    data_dir = os.path.join(workdir, "data")
    flags = [a.replace("/var/lib/clm", data_dir)
              .replace("/etc/clm/clm.textproto", os.path.join(clmtest.REPO, "deploy", "clm.textproto"))
             for a in argv[1:]]
    server = clmtest.ClmServer(args.server, workdir=workdir, flags=flags)
    server.wait_ready()
    code = server.stop()
    if code != 0:
        clmtest.fail(f"clm-server with the unit's flags exited {code} after SIGTERM:\n{server.log_text()}")
    if not os.path.exists(os.path.join(data_dir, "clm.db")):
        clmtest.fail(f"--data_dir from the unit was not used: no clm.db in {data_dir}")
    print(f"clm-server accepts the unit's flags {flags} and exits 0 on SIGTERM")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
