#!/usr/bin/env bash
# The `openstack` CLI smoke path a new kumo user runs.
#
#   OS_CLIENT_CONFIG_FILE=path/clouds.yaml OS_CLOUD=kumo-admin conformance/smoke.sh
#   python3 conformance/run.py --smoke        # same, against a fresh kumo it starts and stops
#
# OS_CLOUD must be an admin cloud: the script creates a project and a user, then does the
# rest as that new user (a plain member).  Steps for a service run only when its type is in
# `openstack catalog list`, so the script grows with kumo without breaking.  Everything the
# script creates is removed on exit, also on failure.
set -euo pipefail

: "${OS_CLOUD:?set OS_CLOUD (an admin cloud) and OS_CLIENT_CONFIG_FILE}"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if ! command -v openstack >/dev/null 2>&1; then
    if [[ -x "$HERE/.venv/bin/openstack" ]]; then
        PATH="$HERE/.venv/bin:$PATH"
    else
        echo "smoke: no openstack CLI on PATH (run conformance/run.py once to build conformance/.venv)" >&2
        exit 2
    fi
fi

STEP_TIMEOUT="${SMOKE_STEP_TIMEOUT:-300}"
SUFFIX="smoke-$$-$RANDOM"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/kumo-smoke.XXXXXX")"
CLEANUP=()      # commands run in reverse order on exit
AS_USER=0       # 1: commands run as the new member user

say() { printf '\n==> %s\n' "$*"; }

# os ARGS...: one openstack CLI call, echoed, as admin or as the new user.
os() {
    printf '+ openstack %s\n' "$*" >&2
    if [[ $AS_USER == 1 ]]; then
        env -u OS_CLOUD \
            OS_AUTH_TYPE=password OS_AUTH_URL="$AUTH_URL" OS_IDENTITY_API_VERSION=3 \
            OS_USERNAME="$USER_NAME" OS_PASSWORD="$USER_PASSWORD" OS_PROJECT_NAME="$PROJECT_NAME" \
            OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_REGION_NAME="$REGION" \
            timeout "$STEP_TIMEOUT" openstack "$@"
    else
        timeout "$STEP_TIMEOUT" openstack "$@"
    fi
}

# json_get KEY: read one key of a JSON object on stdin.
# Key match is case-insensitive (OSC versions differ: "id" vs "ID").
json_get() {
    python3 -c '
import json, sys
doc, key = json.load(sys.stdin), sys.argv[1]
for k, v in doc.items():
    if k.lower() == key.lower():
        print(v)
        break
else:
    sys.exit("key %r not in %s" % (key, sorted(doc)))
' "$1"
}

# defer WHO ARGS...: remember an openstack call to undo a step (WHO = admin|user).
defer() { local who=$1; shift; CLEANUP+=("$who $(printf '%q ' "$@")"); }

cleanup() {
    local rc=$?
    set +e
    if ((${#CLEANUP[@]})); then
        say "cleanup"
        local i who cmd
        for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do
            who=${CLEANUP[i]%% *}
            cmd=${CLEANUP[i]#* }
            if [[ $who == user ]]; then AS_USER=1; else AS_USER=0; fi
            eval "os $cmd" >/dev/null || echo "  (cleanup step failed: openstack $cmd)" >&2
        done
    fi
    rm -rf "$WORK"
    if [[ $rc == 0 ]]; then say "SMOKE PASSED"; else say "SMOKE FAILED (exit $rc)"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --------------------------------------------------------------------------- identity
say "identity: token and catalog (admin)"
os token issue
os catalog list
TYPES="$(os catalog list -f value -c Type)"
has() { local t; for t in "$@"; do grep -qx -- "$t" <<<"$TYPES" && return 0; done; return 1; }

AUTH_URL="$(os configuration show -f json | json_get auth.auth_url)"
REGION="$(os configuration show -f json | python3 -c 'import json,sys; print(json.load(sys.stdin).get("region_name") or "RegionOne")')"

say "identity: project, user, role"
PROJECT_NAME="$SUFFIX-project"
USER_NAME="$SUFFIX-user"
USER_PASSWORD="pw-$RANDOM-$RANDOM-$$"
os project create --domain Default --description "kumo smoke test" "$PROJECT_NAME"
defer admin project delete "$PROJECT_NAME"
os user create --domain Default --project "$PROJECT_NAME" --password "$USER_PASSWORD" "$USER_NAME"
defer admin user delete --domain Default "$USER_NAME"
os role add --project "$PROJECT_NAME" --user "$USER_NAME" member
os role assignment list --names --project "$PROJECT_NAME" | tee "$WORK/assignments"
grep -q -- "$USER_NAME" "$WORK/assignments" || { echo "role assignment for $USER_NAME not listed" >&2; exit 1; }

say "identity: the new user logs in and creates an application credential"
AS_USER=1
os token issue
os application credential create -f json --description "kumo smoke" "$SUFFIX-appcred" >"$WORK/appcred.json"
defer user application credential delete "$SUFFIX-appcred"
APPCRED_ID="$(json_get id <"$WORK/appcred.json")"
APPCRED_SECRET="$(json_get secret <"$WORK/appcred.json")"
echo "application credential id: $APPCRED_ID"

say "identity: token from the application credential"
printf '+ openstack token issue  (OS_AUTH_TYPE=v3applicationcredential)\n' >&2
env -u OS_CLOUD OS_AUTH_TYPE=v3applicationcredential OS_AUTH_URL="$AUTH_URL" OS_IDENTITY_API_VERSION=3 \
    OS_APPLICATION_CREDENTIAL_ID="$APPCRED_ID" OS_APPLICATION_CREDENTIAL_SECRET="$APPCRED_SECRET" \
    OS_REGION_NAME="$REGION" timeout "$STEP_TIMEOUT" openstack token issue

# From here on the new member user works in its own project.
IMAGE="" NETWORK=""

# --------------------------------------------------------------------------- image
if has image; then
    say "image: upload a tiny raw image"
    head -c 1048576 /dev/zero >"$WORK/tiny.img"
    IMAGE="$SUFFIX-tiny"
    os image create --disk-format raw --container-format bare --file "$WORK/tiny.img" "$IMAGE"
    defer user image delete "$IMAGE"
    os image show "$IMAGE"
    os image list
else
    say "image: not in the catalog, skipped"
fi

# --------------------------------------------------------------------------- network
if has network; then
    say "network: network and subnet"
    NETWORK="$SUFFIX-net"
    os network create "$NETWORK"
    defer user network delete "$NETWORK"
    os subnet create --network "$NETWORK" --subnet-range 192.0.2.0/24 "$SUFFIX-sub"
    defer user subnet delete "$SUFFIX-sub"
    os network list
else
    say "network: not in the catalog, skipped"
fi

# --------------------------------------------------------------------------- compute
SERVER=""
if has compute && [[ -n $IMAGE && -n $NETWORK ]]; then
    say "compute: boot a server"
    SERVER="$SUFFIX-vm"
    os server create --image "$IMAGE" --flavor m1.tiny --network "$NETWORK" --wait "$SERVER"
    defer user server delete --wait "$SERVER"
    os server show "$SERVER"
    os server list
elif has compute; then
    say "compute: in the catalog, but image and network are needed to boot: skipped"
else
    say "compute: not in the catalog, skipped"
fi

# --------------------------------------------------------------------------- block storage
if has block-storage volumev3 volume; then
    say "volume: create and wait until available"
    VOLUME="$SUFFIX-vol"
    os volume create --size 1 "$VOLUME"
    defer user volume delete "$VOLUME"
    status=""
    for _ in $(seq 1 60); do
        status="$(os volume show -f value -c status "$VOLUME")"
        [[ $status == available || $status == error ]] && break
        sleep 2
    done
    [[ $status == available ]] || { echo "volume $VOLUME is $status, not available" >&2; exit 1; }
    if [[ -n $SERVER ]]; then
        say "volume: attach to the server"
        os server add volume "$SERVER" "$VOLUME"
        defer user server remove volume "$SERVER" "$VOLUME"
        os volume show "$VOLUME"
    fi
else
    say "volume: not in the catalog, skipped"
fi

# --------------------------------------------------------------------------- object storage
if has object-store; then
    say "object storage: container and object"
    CONTAINER="$SUFFIX-c1"
    [[ -f $WORK/tiny.img ]] || head -c 1048576 /dev/zero >"$WORK/tiny.img"
    os container create "$CONTAINER"
    defer user container delete "$CONTAINER"
    (cd "$WORK" && os object create "$CONTAINER" tiny.img)
    defer user object delete "$CONTAINER" tiny.img
    os object list "$CONTAINER" | tee "$WORK/objects"
    grep -q tiny.img "$WORK/objects" || { echo "tiny.img not listed in $CONTAINER" >&2; exit 1; }
else
    say "object storage: not in the catalog, skipped"
fi
