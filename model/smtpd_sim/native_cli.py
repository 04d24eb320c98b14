"""``python -m smtpd_sim.native_cli build|clean|status``: the compiled hot path (see smtpd_sim.native)."""

from __future__ import annotations

import sys

from smtpd_sim.native import build, clean, status


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    cmd = args[0] if args else "status"
    if cmd == "build":
        build()
        return 0
    if cmd == "clean":
        clean()
        return 0
    if cmd == "status":
        st = status()
        n = sum(st.values())
        print(f"{n} of {len(st)} hot-path modules compiled (mypyc)" + ("" if n else ": pure Python"))
        return 0
    print(f"smtpd-sim native: unknown command {cmd!r} (expected build, clean or status)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
