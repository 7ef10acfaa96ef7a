// Bash helper functions emitted (only when used) at the top of a stage script. They are constants: no
// payload value is ever spliced into them; values reach them as quoted arguments. Keeping the loops here
// (globbing, retries) keeps the TypeScript side a flat list of commands.
//
// Template literals: `\${` is bash's `${`, `\\` is one backslash.

const messages = `_fr_warn() { printf '\\033[0;33m%s\\033[0;m\\n' "$*"; }
_fr_err() { printf '\\033[31;1m%s\\033[0;m\\n' "$*"; }
_fr_status_text() {
  case $1 in
    200) printf 'OK' ;;
    201) printf 'Created' ;;
    400) printf 'Bad Request' ;;
    401) printf 'Unauthorized' ;;
    403) printf 'Forbidden' ;;
    404) printf 'Not Found' ;;
    405) printf 'Method Not Allowed' ;;
    413) printf 'Request Entity Too Large' ;;
    429) printf 'Too Many Requests' ;;
    500) printf 'Internal Server Error' ;;
    502) printf 'Bad Gateway' ;;
    503) printf 'Service Unavailable' ;;
    504) printf 'Gateway Timeout' ;;
    000) printf '(no response)' ;;
    *) printf 'HTTP status' ;;
  esac
}`;

// $1 URL, $2 header file holding "JOB-TOKEN: …" (so the token never reaches argv), $3 output file.
// direct_download=true on the first try only; a redirect (object storage) is followed WITHOUT the token.
// 401/403/404 are final, anything else is tried 3 times.
const download = `_fr_download() {
  local url=$1 hdr=$2 out=$3 attempt=0 target result code location
  while [ "$attempt" -lt 3 ]; do
    attempt=$((attempt + 1))
    target=$url
    if [ "$attempt" -eq 1 ]; then target="$url?direct_download=true"; fi
    result=$(curl -sS -o "$out" -w '%{http_code} %{redirect_url}' -H "@$hdr" "$target") || result='000 '
    code=\${result%% *}
    location=\${result#* }
    case $code in
      301|302|303|307|308)
        if [ -n "$location" ]; then
          code=$(curl -sS -L -o "$out" -w '%{http_code}' "$location") || code=000
        fi ;;
    esac
    case $code in
      200) printf '%s\\n' 'Downloading artifacts from coordinator... ok'; return 0 ;;
      401|403|404) _fr_err "ERROR: Downloading artifacts from coordinator... $code $(_fr_status_text "$code")"; return 1 ;;
    esac
    _fr_warn "WARNING: Downloading artifacts from coordinator... $code $(_fr_status_text "$code") (attempt $attempt of 3)"
    if [ "$attempt" -lt 3 ]; then sleep "$attempt"; fi
  done
  _fr_err 'ERROR: Downloading artifacts from coordinator... failed'
  return 1
}`;

// $1 URL, $2 header file, $3 curl form spec of the one part "file", $4 artifact type (for messages).
// GitLab's uploader: 403 and 413 are final, 503 is tried up to 6 times, anything else up to 3.
const upload = `_fr_upload() {
  local url=$1 hdr=$2 form=$3 type=$4 attempt=0 limit code
  while :; do
    attempt=$((attempt + 1))
    code=$(curl -sS -L -o /dev/null -w '%{http_code}' -H "@$hdr" -F "$form" "$url") || code=000
    case $code in
      2??) printf '%s\\n' "Uploading artifacts as \\"$type\\" to coordinator... $code $(_fr_status_text "$code")"; return 0 ;;
      403|413) _fr_err "ERROR: Uploading artifacts as \\"$type\\" to coordinator... $code $(_fr_status_text "$code")"; return 1 ;;
      503) limit=6 ;;
      *) limit=3 ;;
    esac
    if [ "$attempt" -ge "$limit" ]; then
      _fr_err "ERROR: Uploading artifacts as \\"$type\\" to coordinator... $code $(_fr_status_text "$code"), giving up after $attempt attempts"
      return 1
    fi
    _fr_warn "WARNING: Uploading artifacts as \\"$type\\" to coordinator... $code $(_fr_status_text "$code"), retrying ($attempt of $limit)"
    sleep "$attempt"
  done
}`;

// $1 archive, $2 target directory. unzip exits 1 for warnings (e.g. a stripped "../"): not a failure.
const unzip = `_fr_unzip() {
  local rc=0
  unzip -o -q "$1" -d "$2" || rc=$?
  if [ "$rc" -le 1 ]; then return 0; fi
  return "$rc"
}`;

// Writes to $1 the entries to archive (relative to the current directory, one per line, each once), from
// --path GLOB (globstar: "**" spans directories; a directory brings everything below it), --exclude GLOB
// (a matched directory excludes everything below it) and --untracked (git ls-files -o). Prints GitLab's
// per-path counts. Runs in a subshell so the shopt/IFS changes stay local.
const collect = `_fr_collect() (
  list=$1; shift
  paths=(); excludes=(); untracked=0
  while [ "$#" -gt 0 ]; do
    case $1 in
      --path) paths+=("$2"); shift 2 ;;
      --exclude) excludes+=("$2"); shift 2 ;;
      --untracked) untracked=1; shift ;;
      *) return 2 ;;
    esac
  done
  shopt -s globstar nullglob dotglob
  declare -A seen=() excluded=()
  _fr_norm() {
    norm=$1
    while [[ $norm == ./* ]]; do norm=\${norm#./}; done
    while [[ $norm == */ && $norm != / ]]; do norm=\${norm%/}; done
  }
  _fr_excluded() {
    local f=$1
    while :; do
      if [[ -n \${excluded[$f]+x} ]]; then return 0; fi
      if [[ $f != */* ]]; then return 1; fi
      f=\${f%/*}
    done
  }
  _fr_add() {
    if [[ $1 == *$'\\n'* ]]; then _fr_warn "WARNING: skipping a file name that contains a newline"; return 1; fi
    if _fr_excluded "$1"; then return 1; fi
    if [[ -z \${seen[$1]+x} ]]; then seen[$1]=1; printf '%s\\n' "$1" >> "$list"; fi
    return 0
  }
  : > "$list"
  IFS=
  for pattern in "\${excludes[@]}"; do
    for m in $pattern; do _fr_norm "$m"; excluded[$norm]=1; done
  done
  for pattern in "\${paths[@]}"; do
    n=0
    for m in $pattern; do
      _fr_norm "$m"; m=$norm
      if [ ! -e "$m" ] && [ ! -L "$m" ]; then continue; fi
      if ! _fr_add "$m"; then continue; fi
      n=$((n + 1))
      if [ -d "$m" ] && [ ! -L "$m" ]; then
        while IFS= read -r -d '' f; do
          if _fr_add "\${f#./}"; then n=$((n + 1)); fi
        done < <(find "./$m" -mindepth 1 -print0)
      fi
    done
    if [ "$n" -gt 0 ]; then
      printf '%s: found %s matching artifact files and directories\\n' "$pattern" "$n"
    else
      _fr_warn "WARNING: $pattern: no matching files. Ensure that the artifact path is relative to the working directory ($PWD)"
    fi
  done
  if [ "$untracked" = 1 ]; then
    n=0
    if git rev-parse --git-dir >/dev/null 2>&1; then
      while IFS= read -r -d '' f; do
        if _fr_add "$f"; then n=$((n + 1)); fi
      done < <(git ls-files -o -z)
      printf 'untracked: found %s files\\n' "$n"
    else
      _fr_warn 'WARNING: untracked: not a git repository, no untracked files collected'
    fi
  fi
)`;

// $1 format (zip | gzip | raw), $2 list from _fr_collect, $3 archive to create. zip keeps symlinks (-y) and
// adds directories as entries (the list already holds their contents). gzip: one member per regular file,
// as GitLab's gzip archiver. raw: exactly one regular file, sent as is.
const archive = `_fr_archive() {
  local format=$1 list=$2 out=$3 f count=0 single=
  rm -f "$out"
  case $format in
    zip)
      zip -q -y "$out" -@ < "$list" || return 1 ;;
    gzip)
      : > "$out" || return 1
      while IFS= read -r f; do
        if [ -f "$f" ] && [ ! -L "$f" ]; then gzip -c -- "$f" >> "$out" || return 1; count=$((count + 1)); fi
      done < "$list"
      if [ "$count" -eq 0 ]; then _fr_err 'ERROR: no regular files to archive'; return 1; fi ;;
    raw)
      while IFS= read -r f; do
        if [ -f "$f" ] && [ ! -L "$f" ]; then count=$((count + 1)); single=$f; fi
      done < "$list"
      if [ "$count" -ne 1 ]; then _fr_err "ERROR: a raw artifact must be exactly one file, found $count"; return 1; fi
      cp -- "$single" "$out" || return 1 ;;
    *) return 1 ;;
  esac
}`;

// Remote cache transfers. $1 is a mode-600 curl config file holding `url = "…"`: a presigned URL carries
// credentials in its query, so it never goes on curl's command line. curl prints neither the URL nor the
// response body; its own error lines (host and reason only) are shown for failures, not for a 404 miss.
// --retry covers timeouts, 408, 429 and 5xx.
// _fr_cache_get: $2 output file. 0 downloaded, 1 not found (404), 2 other failure (warned here).
const cacheGet = `_fr_cache_get() {
  local code
  rm -f "$2"
  code=$(curl -fsS --retry 2 --config "$1" -o "$2" -w '%{http_code}' 2>"$2.log") || :
  code=\${code:-000}
  case $code in
    200) rm -f "$2.log"; return 0 ;;
    404) rm -f "$2" "$2.log"; return 1 ;;
  esac
  if [ -s "$2.log" ]; then printf '%s\\n' "$(< "$2.log")"; fi
  rm -f "$2" "$2.log"
  _fr_warn "WARNING: Downloading cache failed: $code $(_fr_status_text "$code")"
  return 2
}`;

// _fr_cache_put: $2 archive to upload with PUT (no Content-Type: the URL signs only the host). 0 or 1.
const cachePut = `_fr_cache_put() {
  local code
  code=$(curl -fsS --retry 2 --config "$1" --upload-file "$2" -o /dev/null -w '%{http_code}' 2>"$2.log") || :
  code=\${code:-000}
  case $code in
    2??) rm -f "$2.log"; return 0 ;;
  esac
  if [ -s "$2.log" ]; then printf '%s\\n' "$(< "$2.log")"; fi
  rm -f "$2.log"
  _fr_warn "WARNING: Uploading cache failed: $code $(_fr_status_text "$code")"
  return 1
}`;

export const BASH_LIB = { messages, download, upload, unzip, collect, archive, cacheGet, cachePut } as const;
export type BashLibName = keyof typeof BASH_LIB;

/** Helpers each helper needs; `messages` is always included. */
export const BASH_LIB_ORDER: readonly BashLibName[] = ['messages', 'download', 'upload', 'unzip', 'collect', 'archive', 'cacheGet', 'cachePut'];
