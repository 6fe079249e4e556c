# tools/debian-apt.sh - Debian package indexes beyond the machine's apt, without changing it.
#
# Sourced (bash) by tools/fetch-linux-source and tools/fetch-debian-dbg.
#
# A package is looked up in two indexes per Debian architecture ARCH:
#
#   machine  the suites of the machine's own sources: for the machine's
#            architecture the machine's apt itself; for another one a private
#            state $KASALIAS_CACHE/apt-ARCH whose sources.list repeats the
#            Debian stanzas of /etc/apt/sources.list.d/debian.sources with
#            [arch=ARCH] (tests/e2e/fetch-busybox writes the same file there)
#   next     Debian's newer suites ($DEBIAN_APT_NEXT_SUITES: sid and
#            trixie-backports) on the mirror, with the Signed-By keyring, of
#            the first stanza of debian.sources: the private state
#            $KASALIAS_CACHE/apt (machine's architecture) or
#            $KASALIAS_CACHE/apt-next-ARCH
#
# A private state is its own sources.list, lists and archive cache, selected
# with apt -o options (plus APT::Architecture=ARCH, APT::Architectures::=ARCH
# and an empty dpkg status for a foreign ARCH); the machine's sources.list.d
# is not read (its apt.conf.d still is), its apt configuration, lists and
# dpkg architectures are never changed.  Signatures are checked as usual.
#
# Functions (progress and errors go to stderr):
#   debian_apt_native                      the machine's architecture
#   debian_apt_state KIND ARCH             select an index (KIND machine or
#                                          next): sets DEBIAN_APT_OPTS (array
#                                          of apt options, empty for the
#                                          machine's apt), DEBIAN_APT_DIR (""
#                                          for the machine's apt) and
#                                          DEBIAN_APT_LABEL; writes the
#                                          private sources.list
#   debian_apt_update                      apt-get update of the selected index
#   debian_apt_find ARCH FUNC [ARG...]     the first index in which FUNC ARG...
#                                          succeeds (FUNC sees DEBIAN_APT_OPTS):
#                                          machine, then next, without any
#                                          update; then the same order, each
#                                          index updated first.  Leaves that
#                                          index selected; returns 1 if none.
#   debian_apt_download DIR SPEC           apt-get download SPEC (pkg or
#                                          pkg=version) of the selected index
#                                          into DIR (through a temporary
#                                          directory there: a partial download
#                                          never looks like a .deb); prints
#                                          the .deb's path
#
# Environment: KASALIAS_CACHE (default /var/cache/kasalias).

DEBIAN_APT_NEXT_SUITES=${DEBIAN_APT_NEXT_SUITES:-"sid trixie-backports"}
DEBIAN_APT_SOURCES=/etc/apt/sources.list.d/debian.sources
DEBIAN_APT_OPTS=()
DEBIAN_APT_DIR=
DEBIAN_APT_LABEL=
DEBIAN_APT_UPDATED=

_debian_apt_log() { echo "${0##*/}: $*" >&2; }

debian_apt_native() { dpkg --print-architecture; }

# _debian_apt_machine_sources ARCH: the sources.list lines of the machine's
# suites for ARCH (every deb stanza of debian.sources: one line per URI and
# suite); without any there, deb.debian.org with the codename of
# /etc/os-release.
_debian_apt_machine_sources() {
	local arch=$1 codename= lines=
	if [ -f "$DEBIAN_APT_SOURCES" ]; then
		lines=$(awk -v arch="$arch" 'BEGIN { RS = "" } {
			n = split($0, l, "\n"); types = uris = suites = comps = key = ""
			for (i = 1; i <= n; i++) {
				if (l[i] ~ /^#/) continue
				v = l[i]; sub(/^[^:]*:[ \t]*/, "", v)
				if (l[i] ~ /^Types:/) types = v
				if (l[i] ~ /^URIs:/) uris = v
				if (l[i] ~ /^Suites:/) suites = v
				if (l[i] ~ /^Components:/) comps = v
				if (l[i] ~ /^Signed-By:/) key = v
			}
			if ((" " types " ") !~ / deb / || uris == "" || suites == "") next
			opt = "arch=" arch (key != "" ? " signed-by=" key : "")
			nu = split(uris, u, " "); ns = split(suites, s, " ")
			for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
				printf "deb [%s] %s %s %s\n", opt, u[i], s[j], comps
		}' "$DEBIAN_APT_SOURCES")
	fi
	if [ -n "$lines" ]; then
		printf '%s\n' "$lines"
		return 0
	fi
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$codename" ] || { _debian_apt_log "no $DEBIAN_APT_SOURCES and no VERSION_CODENAME"; return 1; }
	printf 'deb [arch=%s] http://deb.debian.org/debian %s main\n' "$arch" "$codename"
}

# _debian_apt_next_sources ARCH: the sources.list lines of the newer suites,
# on the mirror and keyring of the first deb822 stanza with URIs.  For the
# machine's architecture no [arch=] (the lines $KASALIAS_CACHE/apt always had).
_debian_apt_next_sources() {
	local arch=$1 uri= key= opt= s
	if [ -f "$DEBIAN_APT_SOURCES" ]; then
		read -r uri key < <(awk 'BEGIN { RS = "" } /(^|\n)URIs:/ {
			u = k = ""; n = split($0, l, "\n")
			for (i = 1; i <= n; i++) {
				if (l[i] ~ /^URIs:/) { split(l[i], f, " "); u = f[2] }
				if (l[i] ~ /^Signed-By:/) { split(l[i], f, " "); k = f[2] }
			}
			print u, k; exit }' "$DEBIAN_APT_SOURCES") || true
	fi
	uri=${uri:-http://deb.debian.org/debian}
	[ "$arch" = "$(debian_apt_native)" ] || opt="arch=$arch"
	if [ -n "$key" ] && [ -f "$key" ]; then
		opt="${opt:+$opt }signed-by=$key"
	fi
	for s in $DEBIAN_APT_NEXT_SUITES; do
		printf 'deb %s%s %s main\n' "${opt:+[$opt] }" "$uri" "$s"
	done
}

debian_apt_state() {
	local kind=$1 arch=$2 native t
	native=$(debian_apt_native)
	DEBIAN_APT_OPTS=()
	DEBIAN_APT_UPDATED=
	case $kind in
	machine)
		if [ "$arch" = "$native" ]; then
			DEBIAN_APT_DIR=
			DEBIAN_APT_LABEL="the machine's apt"
			return 0
		fi
		DEBIAN_APT_DIR=${KASALIAS_CACHE:-/var/cache/kasalias}/apt-$arch
		DEBIAN_APT_LABEL="the machine's suites for $arch in $DEBIAN_APT_DIR"
		;;
	next)
		if [ "$arch" = "$native" ]; then
			DEBIAN_APT_DIR=${KASALIAS_CACHE:-/var/cache/kasalias}/apt
		else
			DEBIAN_APT_DIR=${KASALIAS_CACHE:-/var/cache/kasalias}/apt-next-$arch
		fi
		DEBIAN_APT_LABEL="${DEBIAN_APT_NEXT_SUITES// /, } for $arch in $DEBIAN_APT_DIR"
		;;
	*) _debian_apt_log "debian_apt_state: unknown kind $kind"; return 2 ;;
	esac
	if [ "$arch" != "$native" ]; then
		DEBIAN_APT_OPTS=(-o "APT::Architecture=$arch" -o "APT::Architectures::=$arch"
			-o Dir::State::status=/dev/null)
	fi
	DEBIAN_APT_OPTS+=(-o "Dir::Etc::sourcelist=$DEBIAN_APT_DIR/sources.list"
		-o Dir::Etc::sourceparts=/dev/null
		-o "Dir::State::Lists=$DEBIAN_APT_DIR/lists" -o "Dir::Cache=$DEBIAN_APT_DIR/cache")
	# sources.list is written (atomically) every time: cheap, and follows a
	# changed mirror or keyring.
	mkdir -p "$DEBIAN_APT_DIR/lists/partial" "$DEBIAN_APT_DIR/cache/archives/partial"
	t=$(mktemp "$DEBIAN_APT_DIR/.sources.list.XXXXXX")
	if ! { if [ "$kind" = machine ]; then _debian_apt_machine_sources "$arch"
	       else _debian_apt_next_sources "$arch"; fi; } >"$t" || [ ! -s "$t" ]; then
		rm -f "$t"
		_debian_apt_log "cannot write the sources of $DEBIAN_APT_LABEL"
		return 1
	fi
	chmod 0644 "$t"
	mv -f "$t" "$DEBIAN_APT_DIR/sources.list"
}

debian_apt_update() {
	_debian_apt_log "apt-get update of $DEBIAN_APT_LABEL"
	apt-get "${DEBIAN_APT_OPTS[@]}" update -q >&2 || { _debian_apt_log "apt-get update failed"; return 1; }
	DEBIAN_APT_UPDATED=1
}

# _debian_apt_has_lists: the selected index was updated at least once.
_debian_apt_has_lists() {
	local d=${DEBIAN_APT_DIR:+$DEBIAN_APT_DIR/lists}
	d=${d:-/var/lib/apt/lists}
	compgen -G "$d/*_Packages*" >/dev/null
}

debian_apt_find() {
	local arch=$1 kind
	shift
	for kind in machine next; do
		debian_apt_state "$kind" "$arch" || return 1
		_debian_apt_has_lists && "$@" && return 0
	done
	for kind in machine next; do
		debian_apt_state "$kind" "$arch" || return 1
		debian_apt_update || return 1
		"$@" && return 0
	done
	return 1
}

# A subshell: its EXIT trap removes the temporary directory whatever happens.
debian_apt_download() (
	dir=$1 spec=$2 rc=0
	tmp=$(mktemp -d "$dir/.download.XXXXXX") || exit 1
	trap 'rm -rf "$tmp"' EXIT
	chmod 0755 "$tmp"   # readable by apt's _apt user
	# apt-get download writes into the current directory (as root it warns
	# about the unsandboxed _apt user).
	(cd "$tmp" && apt-get "${DEBIAN_APT_OPTS[@]}" download -q -- "$spec" >&2) || rc=$?
	if [ "$rc" -eq 0 ]; then
		f=$(find "$tmp" -maxdepth 1 -name '*.deb' -print -quit)
		if [ -n "$f" ]; then
			mv -f "$f" "$dir/" && echo "$dir/${f##*/}" || rc=1
		else
			_debian_apt_log "apt-get download $spec produced no .deb"
			rc=1
		fi
	fi
	exit "$rc"
)
