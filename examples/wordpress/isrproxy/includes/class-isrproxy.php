<?php
/**
 * Gathers what changed during a request and revalidates it once the request is over.
 *
 * @package isrproxy
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * The hooks: posts, comments and site-wide changes, and the Cache-Tag header.
 */
final class Isrproxy {

	/** @var array<int, true> IDs of posts changed in this request; resolved at the end. */
	private static $posts = array();

	/** @var array<int, array> Targets of posts about to be deleted, by ID, until deleted_post confirms. */
	private static $deleting = array();

	/** @var array Targets resolved ahead (a post's pages before an update changes them). */
	private static $targets = array(
		'paths'    => array(),
		'tags'     => array(),
		'prefixes' => array(),
	);

	/** @var bool Whether something that every page shows changed (title, menus, theme …). */
	private static $site_wide = false;

	/** @var bool Whether the end-of-request sender is registered. */
	private static $registered = false;

	/** Options whose change shows on every page. */
	const SITE_OPTIONS = array(
		'blogname',
		'blogdescription',
		'permalink_structure',
		'category_base',
		'tag_base',
		'show_on_front',
		'page_on_front',
		'page_for_posts',
		'posts_per_page',
		'date_format',
		'time_format',
		'start_of_week',
		'timezone_string',
		'gmt_offset',
		'site_icon',
		'WPLANG',
		'sidebars_widgets',
		'blog_public',
	);

	/** Post types whose change shows on every page: templates, template parts, global styles, menus. */
	const SITE_POST_TYPES = array( 'wp_template', 'wp_template_part', 'wp_global_styles', 'wp_navigation', 'nav_menu_item' );

	/** Hooks the plugin in. It calls isrproxy only once configured. */
	public static function init() {
		add_action( 'pre_post_update', array( __CLASS__, 'before_update' ), 10, 1 );
		add_action( 'save_post', array( __CLASS__, 'saved' ), 10, 2 );
		add_action( 'before_delete_post', array( __CLASS__, 'before_delete' ), 10, 1 );
		add_action( 'deleted_post', array( __CLASS__, 'deleted' ), 10, 1 );

		add_action( 'comment_post', array( __CLASS__, 'comment_posted' ), 10, 2 );
		add_action( 'wp_set_comment_status', array( __CLASS__, 'comment_status_set' ), 10, 2 );
		add_action( 'transition_comment_status', array( __CLASS__, 'comment_transition' ), 10, 3 );
		add_action( 'edit_comment', array( __CLASS__, 'comment_edited' ), 10, 1 );

		foreach ( self::SITE_OPTIONS as $option ) {
			add_action( 'update_option_' . $option, array( __CLASS__, 'site_changed' ) );
		}
		add_action( 'updated_option', array( __CLASS__, 'option_updated' ), 10, 1 );
		add_action( 'wp_update_nav_menu', array( __CLASS__, 'site_changed' ) );
		add_action( 'wp_delete_nav_menu', array( __CLASS__, 'site_changed' ) );
		add_action( 'customize_save_after', array( __CLASS__, 'site_changed' ) );
		add_action( 'switch_theme', array( __CLASS__, 'site_changed' ) );
		foreach ( self::SITE_POST_TYPES as $type ) {
			add_action( 'save_post_' . $type, array( __CLASS__, 'site_changed' ) );
		}

		add_action( self::retry_hook(), array( 'Isrproxy_Client', 'retry' ) );
		add_action( 'template_redirect', array( __CLASS__, 'tag_page' ) );
	}

	/** The hook the retry event runs. */
	private static function retry_hook() {
		return Isrproxy_Client::RETRY_HOOK;
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
			self::merge( Isrproxy_Targets::of_post( $post ) );
		}
	}

	/**
	 * On save_post: queue the post (publish, update, trash, unpublish), unless it is a
	 * revision or an autosave.
	 *
	 * @param int     $post_id Post saved.
	 * @param WP_Post $post    The post.
	 */
	public static function saved( $post_id, $post ) {
		if ( ( defined( 'DOING_AUTOSAVE' ) && DOING_AUTOSAVE ) || wp_is_post_revision( $post_id ) || wp_is_post_autosave( $post_id ) ) {
			return;
		}
		if ( self::relevant( $post ) ) {
			self::queue_post( $post_id );
		}
	}

	/**
	 * Before a post is deleted its permalink and terms still resolve: note them.
	 *
	 * @param int $post_id Post about to be deleted.
	 */
	public static function before_delete( $post_id ) {
		$post = get_post( $post_id );
		if ( self::relevant( $post ) && 'publish' === $post->post_status ) {
			self::$deleting[ (int) $post_id ] = Isrproxy_Targets::of_post( $post );
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
			unset( self::$deleting[ $post_id ], self::$posts[ $post_id ] );
			self::register();
		}
	}

	/**
	 * A new comment, approved at once, shows on its post.
	 *
	 * @param int        $comment_id Comment.
	 * @param int|string $approved   1, 0 or 'spam'.
	 */
	public static function comment_posted( $comment_id, $approved ) {
		if ( 1 === (int) $approved && 'spam' !== $approved ) {
			self::queue_comment( $comment_id );
		}
	}

	/**
	 * A comment approved (or unapproved, spammed, trashed) from the moderation screen.
	 *
	 * @param int    $comment_id Comment.
	 * @param string $status     'approve', 'hold', 'spam', 'trash'.
	 */
	public static function comment_status_set( $comment_id, $status ) {
		if ( 'approve' === $status ) {
			self::queue_comment( $comment_id );
		}
	}

	/**
	 * A comment that enters or leaves the approved state changes what its post shows.
	 *
	 * @param string     $new_status New status.
	 * @param string     $old_status Old status.
	 * @param WP_Comment $comment    The comment.
	 */
	public static function comment_transition( $new_status, $old_status, $comment ) {
		if ( ( 'approved' === $new_status || 'approved' === $old_status ) && is_object( $comment ) ) {
			self::queue_comment( $comment->comment_ID );
		}
	}

	/**
	 * An approved comment edited.
	 *
	 * @param int $comment_id Comment.
	 */
	public static function comment_edited( $comment_id ) {
		$comment = get_comment( $comment_id );
		if ( $comment && '1' === (string) $comment->comment_approved ) {
			self::queue_comment( $comment_id );
		}
	}

	/**
	 * Queues the post of a comment.
	 *
	 * @param int $comment_id Comment.
	 */
	private static function queue_comment( $comment_id ) {
		$comment = get_comment( $comment_id );
		if ( $comment && self::relevant( get_post( (int) $comment->comment_post_ID ) ) ) {
			self::queue_post( (int) $comment->comment_post_ID );
		}
	}

	/**
	 * On updated_option: widget settings (widget_*) and theme mods (theme_mods_*) show on
	 * every page.
	 *
	 * @param string $option Option name.
	 */
	public static function option_updated( $option ) {
		if ( 0 === strpos( $option, 'widget_' ) || 0 === strpos( $option, 'theme_mods_' ) ) {
			self::site_changed();
		}
	}

	/** Something every page shows changed: the whole host is revalidated, softly. */
	public static function site_changed() {
		self::$site_wide = true;
		self::register();
	}

	/**
	 * Queues a post to resolve at the end of the request, once its terms are saved too.
	 *
	 * @param int $post_id Post.
	 */
	private static function queue_post( $post_id ) {
		self::$posts[ (int) $post_id ] = true;
		self::register();
	}

	/** Registers the sender, once, to run when the request is over. */
	private static function register() {
		if ( ! self::$registered ) {
			self::$registered = true;
			// Late on shutdown: after everything else has written its output.
			add_action( 'shutdown', array( __CLASS__, 'finish_and_send' ), PHP_INT_MAX );
		}
	}

	/**
	 * At the end of the request: sends the editor's answer first (the save does not wait
	 * for isrproxy), then calls isrproxy and waits for its answer. A failure is kept and
	 * retried later (Isrproxy_Client).
	 */
	public static function finish_and_send() {
		$calls = self::calls();
		if ( ! $calls ) {
			return;
		}
		if ( function_exists( 'fastcgi_finish_request' ) ) {
			fastcgi_finish_request();
		} elseif ( function_exists( 'litespeed_finish_request' ) ) {
			litespeed_finish_request();
		}
		ignore_user_abort( true );
		foreach ( $calls as $body ) {
			Isrproxy_Client::send( $body );
		}
	}

	/**
	 * The calls to make for what was gathered, and forgets it: one refetch of the changed
	 * posts' pages (read-your-writes: they are new when isrproxy answers), then, for a
	 * site-wide change, every page of the host marked stale (refreshed on its next visit).
	 *
	 * @return array[] JSON bodies.
	 */
	public static function calls() {
		foreach ( array_keys( self::$posts ) as $post_id ) {
			$post = get_post( $post_id );
			if ( $post && 'publish' === $post->post_status ) {
				self::merge( Isrproxy_Targets::of_post( $post ) );
			}
		}
		self::$posts = array();
		$t           = Isrproxy_Targets::unique( self::$targets );
		$calls       = array();
		if ( $t['paths'] || $t['tags'] || $t['prefixes'] ) {
			$calls[] = array_merge( $t, array( 'host' => Isrproxy_Targets::host() ) );
		}
		if ( self::$site_wide ) {
			$calls[] = array(
				'prefixes' => array( '/' ),
				'mode'     => 'soft',
				'host'     => Isrproxy_Targets::host(),
			);
		}
		self::$targets   = array(
			'paths'    => array(),
			'tags'     => array(),
			'prefixes' => array(),
		);
		self::$site_wide = false;
		/**
		 * Filters the JSON bodies sent to isrproxy at the end of a request (add paths, set
		 * 'mode' => 'soft', ...). Each body is one call.
		 */
		return array_values( array_filter( (array) apply_filters( 'isrproxy_revalidate_calls', $calls ) ) );
	}

	/**
	 * On the front end, names the posts a page shows in a Cache-Tag header: "post-<ID>"
	 * for each, and "<taxonomy>-<slug>" on a term archive. isrproxy indexes these, so
	 * revalidating tag "post-42" refreshes every stored page listing post 42.
	 */
	public static function tag_page() {
		global $wp_query;
		if ( headers_sent() || is_admin() || ! ( $wp_query instanceof WP_Query ) ) {
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
	 * Adds targets to those gathered.
	 *
	 * @param array $t Targets as Isrproxy_Targets::of_post() returns them.
	 */
	private static function merge( array $t ) {
		foreach ( array( 'paths', 'tags', 'prefixes' ) as $kind ) {
			self::$targets[ $kind ] = array_merge( self::$targets[ $kind ], $t[ $kind ] );
		}
		self::register();
	}

	/**
	 * Whether changes to $post can show on public pages.
	 *
	 * @param WP_Post|null $post A post.
	 */
	private static function relevant( $post ) {
		return $post instanceof WP_Post && 'revision' !== $post->post_type && is_post_type_viewable( $post->post_type );
	}
}
