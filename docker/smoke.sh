#!/usr/bin/env bash
# Build the container image and smoke-run it without a container runtime (.ci/run runs this).
#
#   docker/smoke.sh [IMAGE]      (root; needs podman, curl and the base image of build-base.sh)
#
# 1. podman build --isolation=chroot --pull=never --format docker (the docker format keeps the
#    HEALTHCHECK) of docker/Dockerfile. The build machine's CA bundle goes to pip as a build
#    secret (PIP_CERT_BUNDLE, default /etc/ssl/certs/ca-certificates.crt), never into a layer.
# 2. The image's metadata: a non-root USER, a HEALTHCHECK, the VOLUME, the ENTRYPOINT.
# 3. podman create + podman export into a temporary root (podman run needs cgroups this machine
#    lacks), mounted read-only (compose.yaml's read_only: true) with /proc, a minimal /dev and a
#    tmpfs /tmp, and, as `docker run -v` would mount them, /etc/radicale-graph and /run/secrets
#    read-only and a state folder at /var/lib/radicale-graph. Programs run there with chroot --userspec as the image's USER,
#    with the image's Env and WorkingDir.
# 4. `radicale-graph demo`: every process of it runs as the image's uid, it answers a CalDAV
#    PROPFIND of alice@contoso.com with 207 Multi-Status (401 without a login), the image's
#    HEALTHCHECK command passes, configuration, secrets and program are read-only and the state
#    folder writable for it, and SIGTERM (docker stop) ends it with exit status 0.
# 5. The image's default command `serve --config /etc/radicale-graph/radicale-graph.conf`, the
#    production layout: the read-only configuration with the client secret read from the
#    read-only /run/secrets/client_secret, against the Graph emulator (`radicale-graph
#    emulator`, also in the image); a PROPFIND answers 207 and the sync state lands in the
#    state volume, owned by the image's user.
# Each step's time is printed. CONTEXT=DIR builds from another checkout of the project (default:
# this one), e.g. `git archive HEAD` unpacked, to leave work in progress out.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${1:-localhost/radicale-graph:smoke}"
CONTEXT="${CONTEXT:-.}"
PIP_CERT_BUNDLE="${PIP_CERT_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
LOGIN=alice@contoso.com
PASSWORD=demo

t0=$(date +%s.%N)
mark() {  # mark STEP: print the seconds since the previous mark
    local now; now=$(date +%s.%N)
    awk -v a="$t0" -v b="$now" -v s="$1" 'BEGIN {printf "smoke: %-36s %6.1f s\n", s, b - a}'
    t0=$now
}
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }
trap 'echo "smoke: FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR
for tool in podman curl chroot mount python3; do
    command -v "$tool" >/dev/null || fail "$tool is missing"
done

# --- 1. build ---------------------------------------------------------------------------------
secret=()
[ -s "$PIP_CERT_BUNDLE" ] && secret=(--secret "id=pip-cert,src=$PIP_CERT_BUNDLE")
build_log="$(mktemp /tmp/radicale-graph-build.XXXXXX.log)"
podman build --isolation=chroot --pull=never --format docker "${secret[@]}" \
    -t "$IMAGE" -f "$CONTEXT/docker/Dockerfile" "$CONTEXT" >"$build_log" 2>&1 \
    || { tail -n 40 "$build_log" >&2; fail "podman build (log: $build_log)"; }
rm -f "$build_log"
mark "podman build"

# --- 2. metadata ------------------------------------------------------------------------------
inspect() { podman image inspect "$IMAGE" --format "$1"; }
user="$(inspect '{{.Config.User}}')"
workdir="$(inspect '{{.Config.WorkingDir}}')"
entrypoint="$(inspect '{{range .Config.Entrypoint}}{{.}} {{end}}')"
cmd="$(inspect '{{range .Config.Cmd}}{{.}} {{end}}')"
health="$(inspect '{{if .Config.Healthcheck}}{{range .Config.Healthcheck.Test}}{{.}} {{end}}{{end}}')"
# shellcheck disable=SC2016  # a Go template, not shell
volumes="$(inspect '{{range $k, $v := .Config.Volumes}}{{$k}} {{end}}')"
mapfile -t image_env < <(inspect '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
[ -n "$user" ] || fail "the image has no USER (it would run as root)"
case "${user%%:*}" in root|0) fail "the image's USER is root" ;; esac
[[ "$health" == CMD\ * ]] || fail "the image has no HEALTHCHECK (built without --format docker?)"
health="${health#CMD }"
[[ " $volumes" == *" /var/lib/radicale-graph "* ]] || fail "no VOLUME /var/lib/radicale-graph"
[ "${entrypoint% }" = radicale-graph ] || fail "ENTRYPOINT is '$entrypoint', not radicale-graph"
echo "smoke: $IMAGE: USER $user, VOLUME ${volumes% }, HEALTHCHECK ${health% }"
echo "smoke: $IMAGE: ENTRYPOINT ${entrypoint% }, CMD ${cmd% }, $(inspect '{{.Size}}' \
    | awk '{printf "%.0f MB", $1 / 1e6}')"
mark "image metadata"

# --- 3. the image's file system ---------------------------------------------------------------
work="$(mktemp -d /var/tmp/radicale-graph-smoke.XXXXXX)"
root="$work/root"
cid=""
pids=()
mounts=()
cleanup() {
    set +e
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in 1 2 3 4 5 6 7 8; do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
        kill -KILL "$p" 2>/dev/null
    done
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[i]}"; done
    [ -n "$cid" ] && podman rm -f "$cid" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

cid="$(podman create --no-healthcheck "$IMAGE")"
mkdir -p "$root"
podman export "$cid" | tar -x -C "$root" --numeric-owner
podman rm "$cid" >/dev/null; cid=""
mark "podman create + export"

# The image's user as numbers, from the image's own /etc/passwd and /etc/group.
name="${user%%:*}"; group="${user#*:}"; [ "$group" = "$user" ] && group=""
uid="$(awk -F: -v n="$name" '$1 == n || $3 == n {print $3; exit}' "$root/etc/passwd")"
[ -n "$uid" ] || fail "user '$name' is not in the image's /etc/passwd"
if [ -n "$group" ]; then
    gid="$(awk -F: -v n="$group" '$1 == n || $3 == n {print $3; exit}' "$root/etc/group")"
else
    gid="$(awk -F: -v n="$name" '$1 == n || $3 == n {print $4; exit}' "$root/etc/passwd")"
fi
[ -n "$gid" ] && [ "$uid" != 0 ] || fail "user '$user' resolves to uid '$uid' gid '$gid'"

mount_at() {  # mount_at TARGET MOUNT-ARGS...
    mkdir -p "$1"; local target="$1"; shift
    mount "$@" "$target"; mounts+=("$target")
}
bind_ro() {  # bind_ro SOURCE TARGET: a read-only bind mount, as `-v SOURCE:TARGET:ro`
    mount_at "$2" --bind "$1"; mount -o remount,bind,ro "$2"
}
# The root file system read-only, as compose.yaml's read_only: true has it; the mount points
# made before.
mkdir -p "$root"/{proc,dev,tmp,etc/radicale-graph,run/secrets,var/lib/radicale-graph}
mount_at "$root" --bind "$root"; mount -o remount,bind,ro "$root"
mount_at "$root/proc" -t proc proc
mount_at "$root/dev" -t tmpfs -o mode=0755,nosuid,size=64k smoke-dev
for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
    IFS=: read -r n major minor <<<"$node"
    mknod -m 0666 "$root/dev/$n" c "$major" "$minor"
done
mkdir -p "$root/dev/shm" && chmod 1777 "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
mount_at "$root/tmp" -t tmpfs -o mode=1777,nosuid,nodev,size=64m smoke-tmp
# As a container has them: configuration and secrets read-only (root's files, readable by the
# image's group), the state in a volume owned by the image's user.
mkdir -p "$work/etc" "$work/secrets" "$work/state"
echo "# written by docker/smoke.sh below" >"$work/etc/radicale-graph.conf"
chown "$uid:$gid" "$work/state"
chmod 0750 "$work/state"
bind_ro "$work/etc" "$root/etc/radicale-graph"
bind_ro "$work/secrets" "$root/run/secrets"
mount_at "$root/var/lib/radicale-graph" --bind "$work/state"
mark "mounts"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
in_image() {  # in_image COMMAND...: run COMMAND in the image's root as its user, with its Env
    # exec: as a background job its pid is then the command's own (chroot and env exec too).
    exec chroot --userspec="$uid:$gid" --groups="$gid" "$root" \
        /usr/bin/env -i --chdir="${workdir:-/}" HOME="${workdir:-/}" "${image_env[@]}" "$@"
}
start() {  # start LOG COMMAND...: start COMMAND in the image in the background; sets $pid
    local log="$1"; shift
    : >"$log"
    (in_image "$@") >"$log" 2>&1 &
    pid=$!
    pids+=("$pid")
}
wait_for() {  # wait_for PID LOG REGEX [URL]: until LOG has a line matching REGEX (if one is
              # given) and URL answers (if one is given)
    for _ in $(seq 1 120); do
        if { [ -z "$3" ] || grep -Eq "$3" "$2"; } && { [ -z "${4:-}" ] || curl -s -o /dev/null "$4"; }; then
            return 0
        fi
        kill -0 "$1" 2>/dev/null || { cat "$2" >&2; fail "process $1 exited"; }
        sleep 0.5
    done
    cat "$2" >&2; fail "process $1: no '$3' ${4:+and no answer from $4 }within 60 s"
}
check_user() {  # check_user PID: it and its children run as the image's uid and gid only
    local procs p id ruid euid suid fsuid rgid
    procs="$1 $(ps -o pid= --ppid "$1" 2>/dev/null | tr '\n' ' ' || true)"
    for p in $procs; do
        read -r _ ruid euid suid fsuid < <(grep '^Uid:' "/proc/$p/status")
        for id in "$ruid" "$euid" "$suid" "$fsuid"; do
            [ "$id" = "$uid" ] || fail "process $p runs as uid $id, not $uid"
        done
        read -r _ rgid _ < <(grep '^Gid:' "/proc/$p/status")
        [ "$rgid" = "$gid" ] || fail "process $p runs as gid $rgid, not $gid"
        grep -Eq "^Groups:[[:space:]]*($gid)?[[:space:]]*$" "/proc/$p/status" \
            || fail "process $p has other groups: $(grep '^Groups:' "/proc/$p/status")"
    done
    echo "smoke: pid $1 runs as uid $uid gid $gid ($user): $(tr '\0' ' ' <"/proc/$1/cmdline")"
}
propfind() {  # propfind URL: PROPFIND Depth 1 as $LOGIN, expect 207 listing a calendar
    local body="$work/propfind.xml" status
    status="$(curl -s -o "$body" -w '%{http_code}' -u "$LOGIN:$PASSWORD" -X PROPFIND \
        -H 'Depth: 1' -H 'Content-Type: application/xml' \
        --data '<?xml version="1.0"?><propfind xmlns="DAV:"><prop><resourcetype/><displayname/></prop></propfind>' \
        "$1")"
    [ "$status" = 207 ] || { cat "$body" >&2; fail "PROPFIND $1 answered $status, not 207"; }
    grep -Eq '<([A-Za-z0-9]+:)?calendar ?/>' "$body" \
        || { cat "$body" >&2; fail "PROPFIND $1 listed no calendar collection"; }
    echo "smoke: PROPFIND $1 as $LOGIN -> 207 Multi-Status," \
        "$(grep -Eo '<([A-Za-z0-9]+:)?calendar ?/>' "$body" | wc -l) calendars"
}
stop() {  # stop PID LOG: SIGTERM, as docker stop sends it; a clean shutdown exits 0
    local rc=0
    kill -TERM "$1"
    for _ in $(seq 1 40); do kill -0 "$1" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$1" 2>/dev/null && { cat "$2" >&2; fail "pid $1 did not stop within 10 s of SIGTERM"; }
    wait "$1" || rc=$?
    [ "$rc" = 0 ] || { cat "$2" >&2; fail "pid $1 exited with status $rc after SIGTERM"; }
}

# --- 4. the demo ------------------------------------------------------------------------------
port="$(free_port)"
log="$work/demo.log"
# shellcheck disable=SC2086  # the ENTRYPOINT's words
start "$log" $entrypoint demo --host 127.0.0.1 --port "$port"
wait_for "$pid" "$log" '^CalDAV: ' "http://127.0.0.1:$port/"
mark "demo: start (port $port)"
check_user "$pid"
propfind "http://127.0.0.1:$port/$LOGIN/"
status="$(curl -s -o /dev/null -w '%{http_code}' -X PROPFIND -H 'Depth: 0' "http://127.0.0.1:$port/$LOGIN/")"
[ "$status" = 401 ] || fail "PROPFIND without a login answered $status, not 401"
# The image's HEALTHCHECK command, in the image as its user.
# shellcheck disable=SC2086
(in_image RADICALE_GRAPH_HEALTHCHECK_URL="http://127.0.0.1:$port/" $health) \
    || fail "the HEALTHCHECK command failed"
for dir in /etc/radicale-graph /run/secrets /opt/radicale-graph /; do
    (in_image sh -c "echo x >$dir/.smoke" 2>/dev/null) && fail "$dir is writable"
done
(in_image sh -c 'touch /var/lib/radicale-graph/.smoke && rm /var/lib/radicale-graph/.smoke') \
    || fail "/var/lib/radicale-graph is not writable for $user"
mark "demo: PROPFIND, healthcheck"
stop "$pid" "$log"
pids=()
mark "demo: stop (SIGTERM, exit 0)"

# --- 5. serve: read-only configuration and secret, state volume -------------------------------
emu_port="$(free_port)"
emu_log="$work/emulator.log"
# shellcheck disable=SC2086
start "$emu_log" $entrypoint emulator --host 127.0.0.1 --port "$emu_port"
emu_pid=$pid
wait_for "$pid" "$emu_log" '^demo tenant '
read -r tenant client secret_value < <(sed -nE 's/^demo tenant ([^,]+), app ([^,]+), secret (.+)$/\1 \2 \3/p' "$emu_log")
ca="$(sed -n 's/^CA certificate: //p' "$emu_log")"
[ -n "$tenant" ] && [ -n "$ca" ] || { cat "$emu_log" >&2; fail "emulator printed no tenant or CA"; }
# The operator's files, as root owns them on the host: the secret readable by the image's
# group only.
cp "$root$ca" "$work/etc/graph-ca.pem"
printf '%s\n' "$secret_value" >"$work/secrets/client_secret"
chown "0:$gid" "$work/secrets/client_secret" && chmod 0440 "$work/secrets/client_secret"
printf '%s:%s\n' "$LOGIN" "$PASSWORD" >"$work/etc/users"
cp "$root/usr/share/doc/radicale-graph/rights.example" "$work/etc/rights"
port="$(free_port)"
cat >"$work/etc/radicale-graph.conf" <<EOF
[server]
hosts = 127.0.0.1:$port
[auth]
type = htpasswd
htpasswd_filename = /etc/radicale-graph/users
htpasswd_encryption = plain
[rights]
type = from_file
file = /etc/radicale-graph/rights
[web]
type = none
[storage]
type = radicale_graph
tenant_id = $tenant
client_id = $client
client_secret_file = /run/secrets/client_secret
authority_host = https://127.0.0.1:$emu_port
graph_url = https://127.0.0.1:$emu_port/v1.0
ca_file = /etc/radicale-graph/graph-ca.pem
mailboxes = alice@contoso.com, bob@contoso.com
state_folder = /var/lib/radicale-graph
[logging]
level = info
EOF
log="$work/serve.log"
# shellcheck disable=SC2086  # the image's ENTRYPOINT and CMD, as `docker run IMAGE` runs them
start "$log" $entrypoint $cmd
wait_for "$pid" "$log" '' "http://127.0.0.1:$port/"
mark "serve: start (port $port)"
check_user "$pid"
propfind "http://127.0.0.1:$port/$LOGIN/"
# shellcheck disable=SC2086
(in_image RADICALE_GRAPH_HEALTHCHECK_URL="http://127.0.0.1:$port/" $health) \
    || fail "the HEALTHCHECK command failed"
state_files="$(find "$work/state" -mindepth 1 | sed "s|^$work/state/||" | tr '\n' ' ')"
[ -n "$state_files" ] || fail "serve wrote nothing into the state volume"
odd="$(find "$work/state" -mindepth 1 \( ! -uid "$uid" -o ! -gid "$gid" \) | head -n 3)"
[ -z "$odd" ] || fail "state files not owned by $uid:$gid: $odd"
echo "smoke: state volume, owned by $uid:$gid: $state_files"
mark "serve: PROPFIND, healthcheck, state"
stop "$pid" "$log"
pids=("$emu_pid")  # the emulator is only the test's tenant: cleanup ends it
mark "serve: stop (SIGTERM, exit 0)"
echo "smoke: OK"
