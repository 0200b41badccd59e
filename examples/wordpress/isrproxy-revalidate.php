<?php
/**
 * Plugin Name: isrproxy revalidate
 * Description: Asks isrproxy to refetch a post's pages when the post is saved or deleted: its permalink, the home page, its category archives, and every page tagged with it. Also tags each page with a Cache-Tag header so that isrproxy can find the archives listing a post.
 * Version:     1.0.0
 * Requires PHP: 7.4
 * License:     MIT
 *
 * A must-use plugin: copy this file to wp-content/mu-plugins/. Then, in wp-config.php:
 *
 *     define( 'ISRPROXY_URL', 'https://www.example.com' );  // isrproxy's base URL (public, or internal such as http://isrproxy:8080)
 *     define( 'ISRPROXY_SECRET', 'the REVALIDATE_SECRET' );
 *
 * Optional:
 *
 *     define( 'ISRPROXY_PATH', '/api/revalidate' );  // REVALIDATE_PATH, when you changed it
 *     define( 'ISRPROXY_DEBUG', true );              // wait for each answer and log failures with error_log()
 *
 * One call per PHP request, sent at shutdown: by then the block editor has also saved
 * the post's categories, and several saves of one post become one call. The call does
 * not block the editor ('blocking' => false); isrproxy finishes the revalidation even
 * when the caller hangs up.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Collects what to revalidate during a request and sends it at shutdown.
 */
final class Isrproxy_Revalidate {

	/** @var array<int, true> IDs of posts saved in this request; resolved at shutdown. */
	private static $saved = array();

	/** @var array<int, array> Targets of posts about to be deleted, by ID, until deleted_post confirms. */
	private static $deleting = array();

	/** @var array<string, array<string, true>> Targets resolved ahead: 'paths', 'tags', 'prefixes'. */
	private static $targets = array(
		'paths'    => array(),
		'tags'     => array(),
		'prefixes' => array(),
	);

	/** Hooks the plugin in; does nothing until both constants are defined. */
	public static function init() {
		if ( ! defined( 'ISRPROXY_URL' ) || ! defined( 'ISRPROXY_SECRET' ) ) {
			return;
		}
		add_action( 'pre_post_update', array( __CLASS__, 'before_update' ), 10, 1 );
		add_action( 'save_post', array( __CLASS__, 'saved' ), 10, 2 );
		add_action( 'before_delete_post', array( __CLASS__, 'before_delete' ), 10, 1 );
		add_action( 'deleted_post', array( __CLASS__, 'deleted' ), 10, 1 );
		add_action( 'shutdown', array( __CLASS__, 'send' ) );
		add_action( 'template_redirect', array( __CLASS__, 'tag_page' ) );
	}

	/**
	 * Before an update, remembers the pages of the post as it is published now: a new slug,
	 * new categories, unpublishing or trashing must refresh the old pages too.
	 *
	 * @param int $post_id Post being updated.
	 */
	public static function before_update( $post_id ) {
		if ( defined( 'DOING_AUTOSAVE' ) && DOING_AUTOSAVE ) {
			return;
		}
		$post = get_post( $post_id );
		if ( self::relevant( $post ) && 'publish' === $post->post_status ) {
			self::merge( self::targets_of( $post ) );
		}
	}

	/**
	 * On save_post: queue the post, unless it is a revision or an autosave.
	 *
	 * @param int     $post_id Post saved.
	 * @param WP_Post $post    The post.
	 */
	public static function saved( $post_id, $post ) {
		if ( ( defined( 'DOING_AUTOSAVE' ) && DOING_AUTOSAVE ) || wp_is_post_revision( $post_id ) || wp_is_post_autosave( $post_id ) ) {
			return;
		}
		if ( self::relevant( $post ) ) {
			self::$saved[ (int) $post_id ] = true;
		}
	}

	/**
	 * Before a post is deleted its permalink and categories still resolve: note them.
	 *
	 * @param int $post_id Post about to be deleted.
	 */
	public static function before_delete( $post_id ) {
		$post = get_post( $post_id );
		if ( self::relevant( $post ) && 'publish' === $post->post_status ) {
			self::$deleting[ (int) $post_id ] = self::targets_of( $post );
		}
	}

	/**
	 * On deleted_post: the deletion happened, so its pages are revalidated (the origin
	 * now answers 404 for the permalink, and the archives no longer list the post).
	 *
	 * @param int $post_id Post deleted.
	 */
	public static function deleted( $post_id ) {
		$post_id = (int) $post_id;
		if ( isset( self::$deleting[ $post_id ] ) ) {
			self::merge( self::$deleting[ $post_id ] );
			unset( self::$deleting[ $post_id ], self::$saved[ $post_id ] );
		}
	}

	/** At shutdown: one call to isrproxy with everything gathered. */
	public static function send() {
		foreach ( array_keys( self::$saved ) as $post_id ) {
			$post = get_post( $post_id );
			if ( $post && 'publish' === $post->post_status ) {
				self::merge( self::targets_of( $post ) );
			}
		}
		self::$saved = array();
		if ( empty( self::$targets['paths'] ) && empty( self::$targets['tags'] ) && empty( self::$targets['prefixes'] ) ) {
			return;
		}

		$body = array(
			'paths'    => array_keys( self::$targets['paths'] ),
			'tags'     => array_keys( self::$targets['tags'] ),
			'prefixes' => array_keys( self::$targets['prefixes'] ),
			'host'     => self::host(),
		);
		/** Filters the JSON body sent to isrproxy (add paths, set 'mode' => 'soft', ...). */
		$body = apply_filters( 'isrproxy_revalidate_body', $body );
		self::$targets = array(
			'paths'    => array(),
			'tags'     => array(),
			'prefixes' => array(),
		);

		$debug    = defined( 'ISRPROXY_DEBUG' ) && ISRPROXY_DEBUG;
		$path     = defined( 'ISRPROXY_PATH' ) ? ISRPROXY_PATH : '/api/revalidate';
		$response = wp_remote_post(
			rtrim( ISRPROXY_URL, '/' ) . $path,
			array(
				'blocking'    => $debug,
				'timeout'     => $debug ? 30 : 2,
				'headers'     => array(
					'Authorization' => 'Bearer ' . ISRPROXY_SECRET,
					'Content-Type'  => 'application/json',
				),
				'body'        => wp_json_encode( $body, JSON_UNESCAPED_SLASHES ),
				'data_format' => 'body',
			)
		);
		if ( $debug ) {
			if ( is_wp_error( $response ) ) {
				error_log( 'isrproxy revalidate: ' . $response->get_error_message() );
			} elseif ( 200 !== (int) wp_remote_retrieve_response_code( $response ) && 202 !== (int) wp_remote_retrieve_response_code( $response ) ) {
				error_log( 'isrproxy revalidate: ' . wp_remote_retrieve_response_code( $response ) . ' ' . wp_remote_retrieve_body( $response ) );
			}
		}
	}

	/**
	 * On the front end, names the posts a page shows in a Cache-Tag header: "post-<ID>"
	 * for each, and "<taxonomy>-<slug>" on a term archive. isrproxy indexes these, so
	 * revalidating tag "post-42" refreshes every stored page listing post 42.
	 */
	public static function tag_page() {
		global $wp_query;
		if ( headers_sent() || is_admin() || is_feed() || ! ( $wp_query instanceof WP_Query ) ) {
			return;
		}
		$tags = array();
		foreach ( (array) $wp_query->posts as $p ) {
			$tags[] = 'post-' . ( is_object( $p ) ? $p->ID : (int) $p );
		}
		if ( is_category() || is_tag() || is_tax() ) {
			$term = get_queried_object();
			if ( $term instanceof WP_Term ) {
				$tags[] = $term->taxonomy . '-' . $term->slug;
			}
		}
		if ( $tags ) {
			header( 'Cache-Tag: ' . implode( ' ', array_unique( $tags ) ) );
		}
	}

	/**
	 * What one published post's change touches: its permalink and the home page (paths),
	 * "post-<ID>" and "category-<slug>" (tags), and its category archives with their
	 * pagination (prefixes).
	 *
	 * @param WP_Post $post A published post.
	 * @return array{paths: string[], tags: string[], prefixes: string[]}
	 */
	private static function targets_of( $post ) {
		$t = array(
			'paths'    => array( self::path_of( home_url( '/' ) ) ),
			'tags'     => array( 'post-' . $post->ID ),
			'prefixes' => array(),
		);
		$t['paths'][] = self::path_of( get_permalink( $post ) );
		$terms        = get_the_terms( $post, 'category' );
		if ( is_array( $terms ) ) {
			foreach ( $terms as $term ) {
				$t['tags'][] = 'category-' . $term->slug;
				$link        = get_term_link( $term );
				$archive     = is_wp_error( $link ) ? null : self::path_of( $link );
				if ( null === $archive ) {
					continue;
				}
				// A prefix matches paths only: with plain permalinks ("/?cat=3") name the page itself.
				if ( false === strpos( $archive, '?' ) ) {
					$t['prefixes'][] = $archive;
				} else {
					$t['paths'][] = $archive;
				}
			}
		}
		$t['paths'] = array_filter( $t['paths'] );
		return $t;
	}

	/**
	 * Adds targets to those gathered, once each.
	 *
	 * @param array $t Targets as targets_of() returns them.
	 */
	private static function merge( $t ) {
		foreach ( array( 'paths', 'tags', 'prefixes' ) as $kind ) {
			foreach ( $t[ $kind ] as $value ) {
				self::$targets[ $kind ][ $value ] = true;
			}
		}
	}

	/**
	 * Whether changes to $post can show on public pages.
	 *
	 * @param WP_Post|null $post A post.
	 */
	private static function relevant( $post ) {
		return $post instanceof WP_Post && 'revision' !== $post->post_type && is_post_type_viewable( $post->post_type );
	}

	/**
	 * The path and query of a URL on this site, as isrproxy keys it; null when there is none.
	 *
	 * @param string|false $url A URL.
	 */
	private static function path_of( $url ) {
		if ( ! is_string( $url ) || '' === $url ) {
			return null;
		}
		$parts = wp_parse_url( $url );
		if ( ! is_array( $parts ) ) {
			return null;
		}
		$path = isset( $parts['path'] ) && '' !== $parts['path'] ? $parts['path'] : '/';
		if ( isset( $parts['query'] ) && '' !== $parts['query'] ) {
			$path .= '?' . $parts['query'];
		}
		return $path;
	}

	/** The site's host (and port), whose pages isrproxy stores: ISRPROXY_URL may be an internal address. */
	private static function host() {
		$parts = wp_parse_url( home_url( '/' ) );
		$host  = isset( $parts['host'] ) ? $parts['host'] : '';
		if ( isset( $parts['port'] ) ) {
			$host .= ':' . $parts['port'];
		}
		return $host;
	}
}

Isrproxy_Revalidate::init();
