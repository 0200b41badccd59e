<?php
/**
 * The settings page, the "Revalidate this page" admin bar action and the failure notice.
 *
 * @package isrproxy
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * What editors and administrators see of the plugin.
 */
final class Isrproxy_Admin {

	/** Hooks the admin parts in. */
	public static function init() {
		add_action( 'admin_menu', array( __CLASS__, 'menu' ) );
		add_action( 'admin_init', array( __CLASS__, 'register_settings' ) );
		add_action( 'admin_notices', array( __CLASS__, 'notice' ) );
		add_action( 'admin_bar_menu', array( __CLASS__, 'admin_bar' ), 100 );
		add_action( 'admin_post_isrproxy_revalidate', array( __CLASS__, 'revalidate_action' ) );
		add_filter( 'plugin_action_links_' . plugin_basename( dirname( __DIR__ ) . '/isrproxy.php' ), array( __CLASS__, 'action_links' ) );
	}

	/** Settings → isrproxy. */
	public static function menu() {
		add_options_page( 'isrproxy', 'isrproxy', 'manage_options', 'isrproxy', array( __CLASS__, 'page' ) );
	}

	/**
	 * A "Settings" link on the Plugins screen.
	 *
	 * @param string[] $links Links.
	 */
	public static function action_links( $links ) {
		array_unshift( $links, '<a href="' . esc_url( admin_url( 'options-general.php?page=isrproxy' ) ) . '">' . esc_html__( 'Settings', 'isrproxy' ) . '</a>' );
		return $links;
	}

	/** The three options; each is left alone when wp-config.php defines its constant. */
	public static function register_settings() {
		register_setting(
			'isrproxy',
			'isrproxy_url',
			array(
				'type'              => 'string',
				'sanitize_callback' => array( __CLASS__, 'sanitize_url' ),
				'default'           => '',
			)
		);
		register_setting(
			'isrproxy',
			'isrproxy_secret',
			array(
				'type'              => 'string',
				'sanitize_callback' => array( __CLASS__, 'sanitize_secret' ),
				'default'           => '',
			)
		);
		register_setting(
			'isrproxy',
			'isrproxy_path',
			array(
				'type'              => 'string',
				'sanitize_callback' => array( __CLASS__, 'sanitize_path' ),
				'default'           => '/api/revalidate',
			)
		);
	}

	/**
	 * An http(s) URL without a trailing slash.
	 *
	 * @param string $value Input.
	 */
	public static function sanitize_url( $value ) {
		$value = trim( (string) $value );
		return '' === $value ? '' : untrailingslashit( esc_url_raw( $value, array( 'http', 'https' ) ) );
	}

	/**
	 * The secret; an empty field keeps the one saved (the field never shows it).
	 *
	 * @param string $value Input.
	 */
	public static function sanitize_secret( $value ) {
		$value = trim( (string) $value );
		return '' === $value ? (string) get_option( 'isrproxy_secret', '' ) : $value;
	}

	/**
	 * A path beginning with "/".
	 *
	 * @param string $value Input.
	 */
	public static function sanitize_path( $value ) {
		$value = trim( (string) $value );
		return '' === $value ? '/api/revalidate' : '/' . ltrim( $value, '/' );
	}

	/** The settings page. */
	public static function page() {
		if ( ! current_user_can( 'manage_options' ) ) {
			return;
		}
		$fields = array(
			'url'    => array( __( 'isrproxy URL', 'isrproxy' ), 'url', __( 'Its base URL: the public one (https://www.example.com) or an internal one (http://isrproxy:8080).', 'isrproxy' ) ),
			'secret' => array( __( 'Secret', 'isrproxy' ), 'password', __( 'REVALIDATE_SECRET. Leave empty to keep the one saved.', 'isrproxy' ) ),
			'path'   => array( __( 'API path', 'isrproxy' ), 'text', __( 'REVALIDATE_PATH, when you changed it.', 'isrproxy' ) ),
		);
		echo '<div class="wrap"><h1>isrproxy</h1><form method="post" action="options.php">';
		settings_fields( 'isrproxy' );
		echo '<table class="form-table" role="presentation">';
		foreach ( $fields as $name => $field ) {
			$constant = 'ISRPROXY_' . strtoupper( $name );
			echo '<tr><th scope="row"><label for="isrproxy_' . esc_attr( $name ) . '">' . esc_html( $field[0] ) . '</label></th><td>';
			if ( defined( $constant ) ) {
				/* translators: %s: a constant's name */
				echo '<p>' . esc_html( sprintf( __( 'Set in wp-config.php (%s), which wins.', 'isrproxy' ), $constant ) ) . '</p>';
			} else {
				$value = 'secret' === $name ? '' : Isrproxy_Client::setting( $name );
				echo '<input class="regular-text" type="' . esc_attr( $field[1] ) . '" id="isrproxy_' . esc_attr( $name ) . '" name="isrproxy_' . esc_attr( $name ) . '" value="' . esc_attr( $value ) . '" autocomplete="off">';
				echo '<p class="description">' . esc_html( $field[2] ) . '</p>';
			}
			echo '</td></tr>';
		}
		echo '</table>';
		submit_button();
		echo '</form>';
		$pending = Isrproxy_Client::pending();
		if ( $pending ) {
			/* translators: %d: number of calls */
			echo '<p>' . esc_html( sprintf( _n( '%d call waits for a retry.', '%d calls wait for a retry.', count( $pending ), 'isrproxy' ), count( $pending ) ) ) . '</p>';
		}
		echo '</div>';
	}

	/** A notice, for editors, when the last call to isrproxy failed. */
	public static function notice() {
		if ( ! current_user_can( 'edit_posts' ) ) {
			return;
		}
		$last = get_option( Isrproxy_Client::LAST_ERROR );
		if ( ! is_array( $last ) || empty( $last['error'] ) ) {
			return;
		}
		$pending = count( Isrproxy_Client::pending() );
		$when    = wp_date( get_option( 'date_format' ) . ' ' . get_option( 'time_format' ), (int) $last['at'] );
		echo '<div class="notice notice-error"><p><strong>isrproxy:</strong> ';
		/* translators: 1: date and time, 2: error */
		echo esc_html( sprintf( __( 'the last revalidation failed (%1$s): %2$s.', 'isrproxy' ), $when, $last['error'] ) ) . ' ';
		if ( $pending ) {
			/* translators: %d: number of calls */
			echo esc_html( sprintf( _n( '%d call will be retried; until then visitors may see the previous version.', '%d calls will be retried; until then visitors may see the previous version.', $pending, 'isrproxy' ), $pending ) );
		}
		echo '</p></div>';
	}

	/**
	 * "Revalidate this page" in the admin bar: on the front end, the page being viewed;
	 * on a post's edit screen, that post's pages.
	 *
	 * @param WP_Admin_Bar $bar The admin bar.
	 */
	public static function admin_bar( $bar ) {
		if ( ! current_user_can( 'edit_posts' ) || ! Isrproxy_Client::configured() ) {
			return;
		}
		$args = array( 'action' => 'isrproxy_revalidate' );
		if ( is_admin() ) {
			$screen = function_exists( 'get_current_screen' ) ? get_current_screen() : null;
			$post   = get_post();
			if ( ! $screen || 'post' !== $screen->base || ! $post || 'publish' !== $post->post_status ) {
				return;
			}
			$args['post'] = $post->ID;
		} else {
			$uri          = isset( $_SERVER['REQUEST_URI'] ) ? wp_unslash( $_SERVER['REQUEST_URI'] ) : '/'; // phpcs:ignore WordPress.Security.ValidatedSanitizedInput.InputNotSanitized
			$args['path'] = Isrproxy_Targets::path_of( home_url( $uri ) );
		}
		$bar->add_node(
			array(
				'id'    => 'isrproxy-revalidate',
				'title' => __( 'Revalidate this page', 'isrproxy' ),
				'href'  => wp_nonce_url( add_query_arg( array_map( 'rawurlencode', $args ), admin_url( 'admin-post.php' ) ), 'isrproxy_revalidate' ),
			)
		);
	}

	/** The admin bar action: one call, waited for, then back to where the editor was. */
	public static function revalidate_action() {
		if ( ! current_user_can( 'edit_posts' ) ) {
			wp_die( esc_html__( 'You may not revalidate pages.', 'isrproxy' ), 403 );
		}
		check_admin_referer( 'isrproxy_revalidate' );
		$body = array(
			'paths'    => array(),
			'tags'     => array(),
			'prefixes' => array(),
		);
		if ( isset( $_GET['post'] ) ) {
			$post = get_post( absint( $_GET['post'] ) );
			if ( $post && 'publish' === $post->post_status ) {
				$body = Isrproxy_Targets::of_post( $post );
			}
		} elseif ( isset( $_GET['path'] ) ) {
			$path = '/' . ltrim( sanitize_text_field( wp_unslash( $_GET['path'] ) ), '/' );
			$body['paths'][] = $path;
		}
		$body['host'] = Isrproxy_Targets::host();
		Isrproxy_Client::send( array_filter( $body ), false );
		$back         = wp_get_referer();
		if ( ! $back ) {
			$back = admin_url();
		}
		// A failure shows as the notice on the next admin screen, and is not retried:
		// the editor is there to click again.
		wp_safe_redirect( $back );
		exit;
	}
}
