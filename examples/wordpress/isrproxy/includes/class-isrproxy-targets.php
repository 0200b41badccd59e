<?php
/**
 * Which stored pages show a post: the revalidate API's paths, tags and prefixes.
 *
 * @package isrproxy
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Turns a post into the pages that show it.
 */
final class Isrproxy_Targets {

	/**
	 * What one published post's change touches:
	 * - paths: its permalink, its comments feed, its REST API route, the home page (and
	 *   the posts page when the front page is static), its date archives;
	 * - tags: "post-<ID>" (every page whose Cache-Tag names it) and "<taxonomy>-<slug>";
	 * - prefixes: its term archives and its author archive with their pagination and
	 *   feeds, the home page's pagination, the feeds, and the sitemaps.
	 * A URL with a query (plain permalinks) is named as a path, since a prefix matches
	 * paths only.
	 *
	 * @param WP_Post $post A published post.
	 * @return array{paths: string[], tags: string[], prefixes: string[]}
	 */
	public static function of_post( $post ) {
		$t = array(
			'paths'    => array(),
			'tags'     => array( 'post-' . $post->ID ),
			'prefixes' => array( '/wp-sitemap' ),
		);
		self::add( $t, home_url( '/' ), false );
		self::add( $t, get_permalink( $post ), false );
		self::add( $t, get_post_comments_feed_link( $post->ID ), false );
		self::add( $t, get_feed_link(), true );
		self::add( $t, get_feed_link( 'comments_rss2' ), false );
		if ( 'page' === get_option( 'show_on_front' ) && get_option( 'page_for_posts' ) ) {
			self::add( $t, get_permalink( (int) get_option( 'page_for_posts' ) ), true );
		} else {
			// Page 2 and on of the home page: /page/2/ with pretty permalinks.
			$t['prefixes'][] = self::path_of( home_url( '/page/' ) );
		}

		$type = get_post_type_object( $post->post_type );
		if ( $type && ! empty( $type->show_in_rest ) ) {
			$base = ! empty( $type->rest_base ) ? $type->rest_base : $post->post_type;
			$ns   = ! empty( $type->rest_namespace ) ? $type->rest_namespace : 'wp/v2';
			self::add( $t, rest_url( $ns . '/' . $base . '/' . $post->ID ), false );
		}
		if ( 'post' === $post->post_type ) {
			$time = strtotime( $post->post_date );
			$y    = (int) gmdate( 'Y', $time );
			$m    = (int) gmdate( 'm', $time );
			$d    = (int) gmdate( 'd', $time );
			self::add( $t, get_year_link( $y ), false );
			self::add( $t, get_month_link( $y, $m ), false );
			self::add( $t, get_day_link( $y, $m, $d ), false );
			self::add( $t, get_author_posts_url( (int) $post->post_author ), true );
		}

		foreach ( get_object_taxonomies( $post->post_type, 'objects' ) as $taxonomy ) {
			if ( empty( $taxonomy->public ) ) {
				continue;
			}
			$terms = get_the_terms( $post, $taxonomy->name );
			if ( ! is_array( $terms ) ) {
				continue;
			}
			foreach ( $terms as $term ) {
				$t['tags'][] = $term->taxonomy . '-' . $term->slug;
				$link        = get_term_link( $term );
				if ( ! is_wp_error( $link ) ) {
					self::add( $t, $link, true );
				}
			}
		}
		return self::unique( $t );
	}

	/**
	 * Adds the page of $url to $t: as a prefix (the page and everything under it) when
	 * $prefix is true and the URL has no query, else as a path.
	 *
	 * @param array        $t      Targets.
	 * @param string|false $url    A URL on this site.
	 * @param bool         $prefix Whether pages under it (pagination, feeds) count too.
	 */
	private static function add( array &$t, $url, $prefix ) {
		$path = self::path_of( $url );
		if ( null === $path ) {
			return;
		}
		if ( $prefix && false === strpos( $path, '?' ) ) {
			$t['prefixes'][] = $path;
		} else {
			$t['paths'][] = $path;
		}
	}

	/**
	 * Each target once, in the order first named.
	 *
	 * @param array $t Targets.
	 */
	public static function unique( array $t ) {
		foreach ( array( 'paths', 'tags', 'prefixes' ) as $kind ) {
			$t[ $kind ] = array_values( array_unique( array_filter( isset( $t[ $kind ] ) ? $t[ $kind ] : array() ) ) );
		}
		return $t;
	}

	/**
	 * The path and query of a URL on this site, as isrproxy keys it; null when there is none.
	 *
	 * @param string|false $url A URL.
	 * @return string|null
	 */
	public static function path_of( $url ) {
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

	/** The site's host (and port), whose pages isrproxy stores: the isrproxy URL may be an internal address. */
	public static function host() {
		$parts = wp_parse_url( home_url( '/' ) );
		$host  = isset( $parts['host'] ) ? $parts['host'] : '';
		if ( isset( $parts['port'] ) ) {
			$host .= ':' . $parts['port'];
		}
		return $host;
	}
}
