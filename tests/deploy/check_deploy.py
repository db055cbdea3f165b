#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""The deployment files of examples/deploy/ against what docs/deploy.md says.

  check_deploy.py unit UNIT DOCS [--binary PATH]
      systemd-analyze verify on the unit (exit 77 when systemd-analyze is
      absent), then its privilege and sandbox settings.
  check_deploy.py daemonset MANIFEST DOCS
      parses the manifest (a YAML subset, standard library only) and checks
      the host mounts, capabilities and scheduling the docs name.

Exit 0 when every check holds, 1 with each failure on stderr, 77 to skip.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

CAPABILITIES = {"CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"}
# The container's memlock limit is the runtime's, so the DaemonSet adds SYS_RESOURCE.
CONTAINER_CAPABILITIES = {"BPF", "PERFMON", "NET_ADMIN", "SYS_RESOURCE"}
HOST_MOUNTS = ["/sys/fs/cgroup", "/sys/kernel/btf", "/sys/kernel/tracing"]
SKIP = 77

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
    return ok


# --- the systemd unit ---------------------------------------------------------


def read_unit(path):
    """{section: {key: [values in order]}}; continuation lines joined."""
    sections, section, pending = {}, None, ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = pending + raw.rstrip("\n")
            pending = ""
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = sections.setdefault(line[1:-1], {})
            elif "=" in line and section is not None:
                key, value = line.split("=", 1)
                section.setdefault(key.strip(), []).append(value.strip())
    return sections


def verify_with_systemd(unit_path, binary):
    """systemd-analyze verify on a copy whose ExecStart names a file that exists
    (verify refuses a missing executable). Any complaint about the unit fails:
    verify exits 0 when it merely ignores a misspelt key or a bad value, which
    would silently drop a hardening setting."""
    analyze = shutil.which("systemd-analyze")
    name = os.path.basename(unit_path)
    with open(unit_path, encoding="utf-8") as f:
        text = f.read()
    shipped = re.search(r"^ExecStart=(\S+)", text, re.M)
    if not check(shipped, "the unit has no ExecStart="):
        return
    copy_text = text.replace("ExecStart=" + shipped.group(1), "ExecStart=" + binary, 1)

    def verify(unit_text):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, name)
            with open(path, "w", encoding="utf-8") as f:
                f.write(unit_text)
            run = subprocess.run([analyze, "verify", "--man=no", path], capture_output=True, text=True, timeout=60)
            lines = (run.stdout + run.stderr).splitlines()
            return run.returncode, [l for l in lines if name in l or tmp in l], [l for l in lines if name not in l and tmp not in l]

    rc, about_unit, other = verify(copy_text)
    for line in other:
        print("note (not about this unit): " + line)
    check(rc == 0, f"systemd-analyze verify exited {rc}: " + " | ".join(about_unit))
    check(not about_unit, "systemd-analyze verify complained: " + " | ".join(about_unit))

    # This systemd must notice a misspelt key, or the check above proves nothing.
    rc, about_unit, _ = verify(copy_text.replace("\nNoNewPrivileges=", "\nNoNewPrivilegs=", 1))
    check(about_unit, "systemd-analyze verify did not notice a misspelt key; it cannot vouch for the unit")


def check_unit(unit_path, docs, binary):
    unit = read_unit(unit_path)
    service = unit.get("Service", {})

    def one(key):
        values = service.get(key, [])
        return values[-1] if values else None

    def words(key):
        return {w.lstrip("-") for v in service.get(key, []) for w in v.split()}

    exec_start = (one("ExecStart") or "").split()
    check(exec_start and exec_start[0].startswith("/") and exec_start[0].endswith("/connscope-trace"),
          f"ExecStart runs {exec_start[:1]}, not an absolute path to connscope-trace")
    check("--json" in exec_start, "ExecStart does not pass --json")
    check(words("CapabilityBoundingSet") == CAPABILITIES,
          f"CapabilityBoundingSet is {sorted(words('CapabilityBoundingSet'))}, not {sorted(CAPABILITIES)}")
    check(words("AmbientCapabilities") == CAPABILITIES,
          f"AmbientCapabilities is {sorted(words('AmbientCapabilities'))}, not {sorted(CAPABILITIES)}")
    expected = {
        "DynamicUser": "yes",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "LimitMEMLOCK": "infinity",
        "Restart": "on-failure",
        "LogRateLimitIntervalSec": "0",
        "ProtectKernelTunables": "yes",
        "ProtectControlGroups": "yes",
    }
    for key, value in expected.items():
        check(one(key) == value, f"{key}={one(key)}, expected {value}")
        check(key in docs, f"docs/deploy.md does not explain {key}")
    for path in HOST_MOUNTS:
        check(path in words("ReadOnlyPaths"), f"ReadOnlyPaths does not name {path}")
    # The socket iterators see only the service's network namespace; BPF
    # refuses capabilities held in a user namespace (docs/deploy.md).
    for key in ("PrivateNetwork", "PrivateUsers"):
        check(one(key) in (None, "no", "false"), f"{key}={one(key)} would blind or disable the tracer")

    if not shutil.which("systemd-analyze"):
        print("skipped: systemd-analyze is not installed (Debian: apt-get install systemd); "
              "the unit's settings were checked, but systemd did not read it")
        return SKIP
    verify_with_systemd(unit_path, binary)
    return 0


# --- the DaemonSet manifest ---------------------------------------------------


class YamlError(Exception):
    pass


def scalar(text):
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [scalar(x) for x in inner.split(",")] if inner else []
    if text == "{}":
        return {}
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text[:1] in "{&*!|>%@`":
        raise YamlError(f"unsupported YAML: {text}")
    return text


def yaml_lines(text):
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        if "\t" in raw:
            raise YamlError(f"line {number}: a tab")
        # A comment starts at '#' after a space; the manifest quotes no '#'.
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if line.strip() in ("", "---"):
            continue
        out.append((len(line) - len(line.lstrip(" ")), line.strip(), number))
    return out


def parse_yaml(text):
    """Block mappings and sequences, flow sequences of scalars, plain and
    quoted scalars: the subset a manifest like this one uses."""
    lines = yaml_lines(text)

    def block(i, indent):
        if lines[i][1].startswith("-"):
            return sequence(i, indent)
        return mapping(i, indent)

    def mapping(i, indent, first=None):
        out = {}
        while i < len(lines):
            ind, content, number = (indent, first, lines[i][2]) if first else lines[i]
            first = None
            if ind < indent or content.startswith("- ") or content == "-":
                break
            if ind > indent:
                raise YamlError(f"line {number}: indented too far")
            match = re.fullmatch(r"([A-Za-z0-9_.\-/]+):(?:\s+(.*))?", content)
            if not match:
                raise YamlError(f"line {number}: not 'key: value': {content}")
            key, rest = match.group(1), match.group(2)
            if key in out:
                raise YamlError(f"line {number}: {key} given twice")
            i += 1
            if rest:
                out[key] = scalar(rest)
            elif i < len(lines) and lines[i][0] > ind:
                out[key], i = block(i, lines[i][0])
            elif i < len(lines) and lines[i][0] == ind and lines[i][1].startswith("-"):
                out[key], i = sequence(i, ind)
            else:
                out[key] = None
        return out, i

    def sequence(i, indent):
        out = []
        while i < len(lines) and lines[i][0] == indent and (lines[i][1].startswith("- ") or lines[i][1] == "-"):
            item = lines[i][1][1:].strip()
            if not item:
                value, i = block(i + 1, lines[i + 1][0])
            elif re.match(r"[A-Za-z0-9_.\-/]+:(\s|$)", item):
                value, i = mapping(i, indent + 2, first=item)
            else:
                value, i = scalar(item), i + 1
            out.append(value)
        return out, i

    if not lines:
        raise YamlError("empty document")
    value, i = block(0, lines[0][0])
    if i != len(lines):
        raise YamlError(f"line {lines[i][2]}: not part of the document")
    return value


def check_daemonset(manifest_path, docs):
    with open(manifest_path, encoding="utf-8") as f:
        text = f.read()
    try:
        doc = parse_yaml(text)
    except YamlError as e:
        check(False, f"{manifest_path} does not parse: {e}")
        return 0
    check(doc.get("apiVersion") == "apps/v1" and doc.get("kind") == "DaemonSet", "not an apps/v1 DaemonSet")
    pod = (((doc.get("spec") or {}).get("template") or {}).get("spec")) or {}
    check(pod.get("hostPID") is True, "hostPID is not true")
    check("hostPID" in docs, "docs/deploy.md does not explain hostPID")
    check(any(t.get("operator") == "Exists" and "key" not in t for t in pod.get("tolerations") or []),
          "no toleration of every taint (operator: Exists without a key)")
    containers = pod.get("containers") or []
    if not check(len(containers) == 1, f"{len(containers)} containers, expected 1"):
        return 0
    c = containers[0]
    check("--json" in (c.get("command") or []) + (c.get("args") or []), "the container does not pass --json")
    sc = c.get("securityContext") or {}
    caps = sc.get("capabilities") or {}
    check(sc.get("privileged") is False, "privileged is not false")
    check(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation is not false")
    check("ALL" in (caps.get("drop") or []), "capabilities do not drop ALL")
    check(set(caps.get("add") or []) == CONTAINER_CAPABILITIES,
          f"capabilities add {sorted(caps.get('add') or [])}, not {sorted(CONTAINER_CAPABILITIES)}")
    for cap in CONTAINER_CAPABILITIES:
        check("CAP_" + cap in docs, f"docs/deploy.md does not explain CAP_{cap}")
    limits = (c.get("resources") or {}).get("limits") or {}
    check("cpu" in limits and "memory" in limits, "resources.limits lacks cpu or memory")

    host_paths = {v.get("name"): (v.get("hostPath") or {}).get("path") for v in pod.get("volumes") or []}
    mounts = {m.get("name"): m for m in c.get("volumeMounts") or []}
    for path in HOST_MOUNTS:
        names = [n for n, p in host_paths.items() if p == path]
        if not check(names, f"no hostPath volume of {path}"):
            continue
        mount = mounts.get(names[0])
        check(mount and mount.get("mountPath") == path, f"the hostPath {path} is not mounted at {path}")
        check(mount and mount.get("readOnly") is True, f"the hostPath {path} is not mounted readOnly")
    # The manifest and the docs name the same host paths, both ways.
    for path in set(host_paths.values()) | set(HOST_MOUNTS):
        check(path in docs, f"docs/deploy.md does not name the host mount {path}")
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["unit", "daemonset"])
    parser.add_argument("file")
    parser.add_argument("docs")
    parser.add_argument("--binary", help="an existing executable for ExecStart while verifying")
    args = parser.parse_args()
    with open(args.docs, encoding="utf-8") as f:
        docs = f.read()
    if args.what == "unit":
        rc = check_unit(args.file, docs, args.binary or shutil.which("true") or "/bin/true")
    else:
        rc = check_daemonset(args.file, docs)
    for failure in failures:
        print("FAIL: " + failure, file=sys.stderr)
    if failures:
        return 1
    if rc == SKIP:
        return SKIP
    print(f"{os.path.basename(args.file)}: every check holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
