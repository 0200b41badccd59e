#!/usr/bin/env bash
# End to end: a real WordPress (Debian's package, PHP's built-in server, MariaDB with
# its data in a temporary folder) with the plugin of examples/wordpress/isrproxy,
# behind the real isrproxy, everything on loopback and stopped by PID at the end.
#
# It warms a post, the home page and the post's category archive through isrproxy,
# edits the post's title as an editor's save does (wp_update_post, which fires the
# plugin's hooks), and checks that the very next request for each page through
# isrproxy shows the new title: the plugin waits for isrproxy's answer, so the pages
# are new before the editor's request process ends, and nothing is polled. A control
# edit with the plugin's calls filtered out shows that isrproxy really serves the old
# page until told. Then isrproxy is stopped, an edit's call fails and is queued, and
# the retry, once isrproxy is back, sends it.
#
# Needs: php-cli php-mysql mariadb-server wordpress wordpress-theme-twentytwentyone curl go.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
started=$(date +%s)
tmp=$(mktemp -d)
pids=()
cleanup() {
  local status=$?
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    # php -S with PHP_CLI_SERVER_WORKERS forks its workers, which outlive
    # their parent: stop them too, each by its PID.
    for child in $(ps -o pid= --ppid "${pids[i]}" 2>/dev/null); do
      kill "$child" 2>/dev/null || true
    done
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  if [ $status -ne 0 ]; then
    for f in "$tmp"/*.log "$tmp"/db.err; do
      [ -f "$f" ] && { echo "--- $f"; tail -30 "$f"; }
    done
  fi
  rm -rf "$tmp"
  exit $status
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
port() { php -r '$s = stream_socket_server("tcp://127.0.0.1:0"); $n = stream_socket_get_name($s, false); echo substr($n, strrpos($n, ":") + 1);'; }
wait_for() { # command... : up to 20 s
  for _ in $(seq 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "timed out waiting for: $*"
}
for f in /usr/share/wordpress/wp-settings.php /usr/share/wordpress/wp-content/themes/twentytwentyone/style.css /usr/sbin/mariadbd; do
  [ -e "$f" ] || fail "$f is missing: apt-get install wordpress wordpress-theme-twentytwentyone mariadb-server php-mysql"
done

wp_port=$(port); proxy_port=$(port); admin_port=$(port)
secret=$(php -r 'echo bin2hex(random_bytes(16));')
site="http://127.0.0.1:$proxy_port"

echo "== MariaDB on a unix socket, data in $tmp/db"
sock="$tmp/mysql.sock"
mariadb-install-db --no-defaults --datadir="$tmp/db" --user=root --skip-test-db >"$tmp/db-install.log" 2>&1
mariadbd --no-defaults --datadir="$tmp/db" --socket="$sock" --skip-networking --user=root \
  --pid-file="$tmp/db.pid" --log-error="$tmp/db.err" --innodb-buffer-pool-size=32M &
pids+=($!)
wait_for mariadb-admin --no-defaults --socket="$sock" -uroot ping
mariadb --no-defaults --socket="$sock" -uroot -e \
  "CREATE DATABASE wp; CREATE USER 'wp'@'localhost' IDENTIFIED BY 'wp'; GRANT ALL ON wp.* TO 'wp'@'localhost';"

echo "== WordPress $(php -r 'include "/usr/share/wordpress/wp-includes/version.php"; echo $wp_version;') on php -S 127.0.0.1:$wp_port, site URL $site (isrproxy)"
wp="$tmp/wp"
cp -rL /usr/share/wordpress "$wp"
rm -f "$wp/wp-config.php" "$wp/.htaccess"
mkdir -p "$wp/wp-content/plugins" "$wp/wp-content/uploads"
cp -r examples/wordpress/isrproxy "$wp/wp-content/plugins/isrproxy"
cat >"$wp/wp-config.php" <<PHP
<?php
define( 'DB_NAME', 'wp' );
define( 'DB_USER', 'wp' );
define( 'DB_PASSWORD', 'wp' );
define( 'DB_HOST', 'localhost:$sock' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
\$table_prefix = 'wp_';
foreach ( array( 'AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY', 'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT' ) as \$k ) {
	define( \$k, '$secret-' . \$k );
}
define( 'WP_HOME', '$site' );
define( 'WP_SITEURL', '$site' );
// The plugin, configured by constants.
define( 'ISRPROXY_URL', '$site' );
define( 'ISRPROXY_SECRET', '$secret' );
// Every page may be a cache hit: cron runs from the system, not from visits.
define( 'DISABLE_WP_CRON', true );
// Nothing leaves the machine: no update checks, no API calls but to loopback.
define( 'WP_HTTP_BLOCK_EXTERNAL', true );
define( 'AUTOMATIC_UPDATER_DISABLED', true );
define( 'WP_DEBUG', false );
if ( ! defined( 'ABSPATH' ) ) {
	define( 'ABSPATH', __DIR__ . '/' );
}
require_once ABSPATH . 'wp-settings.php';
PHP
# php -S serves files as they are; every other path is WordPress's front controller.
cat >"$wp/router.php" <<'PHP'
<?php
$path = (string) parse_url( $_SERVER['REQUEST_URI'], PHP_URL_PATH );
if ( '/' !== $path && ( is_file( __DIR__ . $path ) || is_file( __DIR__ . rtrim( $path, '/' ) . '/index.php' ) ) ) {
	return false;
}
$_SERVER['SCRIPT_NAME'] = '/index.php';
require __DIR__ . '/index.php';
PHP
# Scripts run with php, as wp-cli would: they bootstrap wp-load.php.
cat >"$tmp/boot.php" <<PHP
<?php
\$_SERVER['HTTP_HOST'] = '127.0.0.1:$proxy_port';
\$_SERVER['SERVER_NAME'] = '127.0.0.1';
\$_SERVER['REQUEST_URI'] = '/';
\$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
PHP
cat >"$tmp/install.php" <<PHP
<?php
require '$tmp/boot.php';
define( 'WP_INSTALLING', true );
require '$wp/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';
add_filter( 'pre_wp_mail', '__return_false' ); // no mail server here
\$r = wp_install( 'isrproxy e2e', 'editor', 'editor@example.com', true, '', 'editor-password-123' );
update_option( 'permalink_structure', '/%postname%/' );
switch_theme( 'twentytwentyone' );
\$err = activate_plugin( 'isrproxy/isrproxy.php' );
if ( is_wp_error( \$err ) ) { fwrite( STDERR, \$err->get_error_message() ); exit( 1 ); }
echo "installed, user " . \$r['user_id'] . "\n";
PHP
cat >"$tmp/post.php" <<PHP
<?php
require '$tmp/boot.php';
require '$wp/wp-load.php';
\$cat = wp_insert_term( 'News', 'category' );
\$id  = wp_insert_post( array( 'post_title' => 'Hello isrproxy v1', 'post_content' => 'A post behind isrproxy.', 'post_status' => 'publish', 'post_author' => 1, 'post_category' => array( \$cat['term_id'] ) ), true );
if ( is_wp_error( \$id ) ) { fwrite( STDERR, \$id->get_error_message() ); exit( 1 ); }
echo \$id, ' ', wp_parse_url( get_permalink( \$id ), PHP_URL_PATH ), ' ', wp_parse_url( get_term_link( \$cat['term_id'] ), PHP_URL_PATH ), "\n";
PHP
# edit.php ID TITLE [quiet]: the editor's save; "quiet" filters the plugin's calls out.
cat >"$tmp/edit.php" <<PHP
<?php
require '$tmp/boot.php';
require '$wp/wp-load.php';
if ( isset( \$argv[3] ) && 'quiet' === \$argv[3] ) {
	add_filter( 'isrproxy_revalidate_calls', '__return_empty_array' );
}
wp_set_current_user( 1 );
\$t0 = microtime( true );
\$r  = wp_update_post( array( 'ID' => (int) \$argv[1], 'post_title' => \$argv[2] ), true );
if ( is_wp_error( \$r ) ) { fwrite( STDERR, \$r->get_error_message() ); exit( 1 ); }
printf( "wp_update_post took %.0f ms; the plugin's call follows at shutdown\n", ( microtime( true ) - \$t0 ) * 1000 );
PHP
# state.php [retry]: the plugin's queue (and, with "retry", runs the retry event now).
cat >"$tmp/state.php" <<PHP
<?php
require '$tmp/boot.php';
require '$wp/wp-load.php';
if ( isset( \$argv[1] ) && 'retry' === \$argv[1] ) {
	\$p = Isrproxy_Client::pending();
	foreach ( \$p as \$i => \$call ) { \$p[ \$i ]['next'] = 0; } // due now: the back-off is not what is tested
	update_option( Isrproxy_Client::PENDING, \$p, false );
	do_action( Isrproxy_Client::RETRY_HOOK );
}
\$last = get_option( Isrproxy_Client::LAST_ERROR );
echo 'pending=', count( Isrproxy_Client::pending() ), ' scheduled=', wp_next_scheduled( Isrproxy_Client::RETRY_HOOK ) ? 'yes' : 'no', ' last_error=', is_array( \$last ) ? \$last['error'] : '', "\n";
PHP

PHP_CLI_SERVER_WORKERS=4 php -S "127.0.0.1:$wp_port" -t "$wp" "$wp/router.php" >"$tmp/php-server.log" 2>&1 &
pids+=($!)
wait_for curl -sf -o /dev/null "http://127.0.0.1:$wp_port/readme.html"

echo "== isrproxy on 127.0.0.1:$proxy_port (admin 127.0.0.1:$admin_port) in front of WordPress"
go build -o "$tmp/isrproxy" .
start_proxy() {
  ORIGIN_URL="http://127.0.0.1:$wp_port" REVALIDATE_SECRET="$secret" LISTEN_ADDR="127.0.0.1:$proxy_port" \
    ADMIN_ADDR="127.0.0.1:$admin_port" LOG_LEVEL=warn "$tmp/isrproxy" >>"$tmp/isrproxy.log" 2>&1 &
  proxy_pid=$!
  pids+=($proxy_pid)
  wait_for curl -sf -o /dev/null "http://127.0.0.1:$admin_port/healthz"
}
start_proxy

php "$tmp/install.php"
# WordPress finishes a theme switch on its next load (the new theme's widgets and
# sidebars are written then): a site-wide change, which the plugin answers with a soft
# revalidation of the whole host. Let that load happen now, while nothing is stored, as
# a real site's first visit would, and not in the middle of the post's publication.
state=$(php "$tmp/state.php")
read -r post_id post_path cat_path < <(php "$tmp/post.php")
echo "post $post_id at $post_path, category archive $cat_path"
state=$(php "$tmp/state.php")
grep -q '^pending=0 ' <<<"$state" || fail "publishing left a call queued: $state"

# get PATH: the page through isrproxy; sets $status, $xcache, $body.
get() {
  local out
  out=$(curl -s -D "$tmp/headers" -w '\n%{time_total}' "$site$1") || fail "GET $1"
  took=$(awk -v s="${out##*$'\n'}" 'BEGIN {printf "%.1f ms", s * 1000}')
  body=${out%$'\n'*}
  status=$(awk 'NR==1 {print $2}' "$tmp/headers")
  xcache=$(tr -d '\r' <"$tmp/headers" | awk -F': ' 'tolower($1)=="x-cache" {print $2}')
}
pages=("$post_path" / "$cat_path")

echo "== warm the post, the home page and the category archive"
for p in "${pages[@]}"; do
  get "$p"; [ "$status" = 200 ] || fail "GET $p answered $status"
  grep -q 'Hello isrproxy v1' <<<"$body" || fail "GET $p does not show the post"
  get "$p"; [ "$xcache" = HIT ] || fail "GET $p again is $xcache, not HIT: not stored"
  echo "$p: HIT, shows v1"
done

echo "== control: an edit whose calls are filtered out leaves the stored pages as they were"
php "$tmp/edit.php" "$post_id" 'Hello isrproxy v2' quiet
for p in "${pages[@]}"; do
  get "$p"
  [ "$xcache" = HIT ] && grep -q 'Hello isrproxy v1' <<<"$body" || fail "GET $p: $xcache, expected the stored v1"
done
echo "all three still HIT with v1: isrproxy serves what it stored until told"

echo "== the editor's save, with the plugin"
t0=$(date +%s%N)
php "$tmp/edit.php" "$post_id" 'Hello isrproxy v3'
t1=$(date +%s%N)
for p in "${pages[@]}"; do
  get "$p"
  grep -q 'Hello isrproxy v3' <<<"$body" || fail "GET $p right after the save does not show v3 ($xcache): a stale answer"
  [ "$xcache" = HIT ] || fail "GET $p after the save is $xcache: the refetch should have stored it"
  echo "$p: HIT, shows v3 on the first request after the save ($took)"
done
t2=$(date +%s%N)
echo "measured: the edit process (save + the plugin's call, waited for) took $(((t1 - t0) / 1000000)) ms;" \
  "the three checks right after it, one request each and no polling, $(((t2 - t1) / 1000000)) ms"
state=$(php "$tmp/state.php")
grep -q '^pending=0 .* last_error=$' <<<"$state" || fail "after the save: $state"
dashboard=$(curl -s "http://127.0.0.1:$admin_port/") # whole: grep -q in a pipe could cut curl off
grep -q "<td class=\"path\">$post_path</td>" <<<"$dashboard" ||
  fail "the admin dashboard does not list the revalidation of $post_path"
echo "the admin dashboard lists the revalidation of $post_path"

echo "== a failed call is kept and retried"
kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true
php "$tmp/edit.php" "$post_id" 'Hello isrproxy v4'
state=$(php "$tmp/state.php")
grep -q '^pending=1 scheduled=yes last_error=.' <<<"$state" || fail "with isrproxy down: $state"
echo "isrproxy down: $state"
start_proxy
state=$(php "$tmp/state.php" retry)
grep -q '^pending=0 scheduled=no last_error=$' <<<"$state" || fail "after the retry: $state"
echo "isrproxy back, retry sent: $state"
get "$post_path"
grep -q 'Hello isrproxy v4' <<<"$body" && [ "$xcache" = HIT ] || fail "after the retry GET $post_path: $xcache, not v4 from memory"
echo "$post_path: HIT, shows v4"

echo "wordpress-e2e: passed in $(($(date +%s) - started)) s"
