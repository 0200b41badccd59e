<?php
/**
 * Plugin Name:       isrproxy
 * Description:       Keeps the pages isrproxy serves from memory current: when a post, a comment or the site's look changes, asks isrproxy to refetch exactly the pages that show it, and waits for its answer after the editor's request has finished.
 * Version:           2.0.0
 * Requires at least: 5.6
 * Requires PHP:      7.4
 * License:           MIT
 * Text Domain:       isrproxy
 *
 * Settings → isrproxy holds the URL and the secret, or wp-config.php does (and then wins):
 *
 *     define( 'ISRPROXY_URL', 'https://www.example.com' );  // isrproxy's base URL (public, or internal such as http://isrproxy:8080)
 *     define( 'ISRPROXY_SECRET', 'the REVALIDATE_SECRET' );
 *     define( 'ISRPROXY_PATH', '/api/revalidate' );          // optional: REVALIDATE_PATH, when you changed it
 *
 * Also works as a must-use plugin: copy this folder to wp-content/mu-plugins/ and add a
 * one-line loader there (require __DIR__ . '/isrproxy/isrproxy.php';).
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

define( 'ISRPROXY_PLUGIN_VERSION', '2.0.0' );

require_once __DIR__ . '/includes/class-isrproxy-client.php';
require_once __DIR__ . '/includes/class-isrproxy-targets.php';
require_once __DIR__ . '/includes/class-isrproxy.php';
require_once __DIR__ . '/includes/class-isrproxy-admin.php';

Isrproxy::init();
Isrproxy_Admin::init();
