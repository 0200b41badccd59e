<?php
/**
 * Calls isrproxy's revalidate API, waits for its answer, and keeps calls that failed
 * to try them again later: a lost call would leave a page stale until its next change.
 *
 * @package isrproxy
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * The revalidate API's client, its settings, and the queue of calls to retry.
 */
final class Isrproxy_Client {

	/** Option holding calls that failed: a list of array{body: array, attempts: int, next: int, error: string}. */
	const PENDING = 'isrproxy_pending';

	/** Option holding the last failure: array{at: int, error: string}; deleted by the next success. */
	const LAST_ERROR = 'isrproxy_last_error';

	/** Hook of the retry event (wp-cron or Action Scheduler). */
	const RETRY_HOOK = 'isrproxy_retry';

	/** Seconds to wait before each retry of a call; after the last one the call is dropped. */
	const BACKOFF = array( 60, 300, 900, 3600, 3 * 3600, 12 * 3600 );

	/** Seconds one call may take: isrproxy answers once every named page is refetched. */
	const TIMEOUT = 30;

	/**
	 * The setting $name: the constant ISRPROXY_<NAME> when wp-config.php defines it, else
	 * the option saved on the settings page.
	 *
	 * @param string $name 'url', 'secret' or 'path'.
	 * @return string
	 */
	public static function setting( $name ) {
		$constant = 'ISRPROXY_' . strtoupper( $name );
		if ( defined( $constant ) ) {
			return (string) constant( $constant );
		}
		$value = (string) get_option( 'isrproxy_' . $name, '' );
		if ( 'path' === $name && '' === $value ) {
			return '/api/revalidate';
		}
		return $value;
	}

	/** Whether the URL and the secret are set. */
	public static function configured() {
		return '' !== self::setting( 'url' ) && '' !== self::setting( 'secret' );
	}

	/**
	 * Sends one revalidate call and waits for the answer. A failure is queued for a
	 * retry unless $queue is false.
	 *
	 * @param array $body  The JSON body (paths, tags, prefixes, host, mode).
	 * @param bool  $queue Whether to retry a failure later.
	 * @return true|string True on a 200 or 202, else what went wrong.
	 */
	public static function send( array $body, $queue = true ) {
		$result = self::post( $body );
		if ( true === $result ) {
			delete_option( self::LAST_ERROR );
			return true;
		}
		update_option(
			self::LAST_ERROR,
			array(
				'at'    => time(),
				'error' => $result,
			),
			false
		);
		error_log( 'isrproxy: revalidation failed: ' . $result ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions
		if ( $queue ) {
			self::enqueue( $body, 0, $result );
		}
		return $result;
	}

	/**
	 * One HTTP call.
	 *
	 * @param array $body The JSON body.
	 * @return true|string
	 */
	private static function post( array $body ) {
		if ( ! self::configured() ) {
			return 'isrproxy is not configured (Settings → isrproxy, or ISRPROXY_URL and ISRPROXY_SECRET)';
		}
		$response = wp_remote_post(
			rtrim( self::setting( 'url' ), '/' ) . self::setting( 'path' ),
			array(
				'timeout'     => self::TIMEOUT,
				'redirection' => 0,
				'headers'     => array(
					'Authorization' => 'Bearer ' . self::setting( 'secret' ),
					'Content-Type'  => 'application/json',
				),
				'body'        => wp_json_encode( $body, JSON_UNESCAPED_SLASHES ),
				'data_format' => 'body',
			)
		);
		if ( is_wp_error( $response ) ) {
			return $response->get_error_message();
		}
		$code = (int) wp_remote_retrieve_response_code( $response );
		if ( 200 === $code || 202 === $code ) {
			return true;
		}
		$answer  = json_decode( wp_remote_retrieve_body( $response ), true );
		$message = is_array( $answer ) && isset( $answer['message'] ) ? $answer['message'] : substr( wp_remote_retrieve_body( $response ), 0, 200 );
		return 'isrproxy answered ' . $code . ( '' !== $message ? ': ' . $message : '' );
	}

	/**
	 * Queues a failed call for a retry after its back-off.
	 *
	 * @param array  $body     The JSON body.
	 * @param int    $attempts Retries already made.
	 * @param string $error    Why the last try failed.
	 */
	private static function enqueue( array $body, $attempts, $error ) {
		if ( $attempts >= count( self::BACKOFF ) ) {
			error_log( 'isrproxy: giving up on a revalidation after ' . $attempts . ' retries: ' . wp_json_encode( $body ) ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions
			return;
		}
		$pending   = self::pending();
		$next      = time() + self::BACKOFF[ $attempts ];
		$pending[] = array(
			'body'     => $body,
			'attempts' => $attempts,
			'next'     => $next,
			'error'    => $error,
		);
		update_option( self::PENDING, $pending, false );
		self::schedule( $next );
	}

	/** The calls waiting for a retry. */
	public static function pending() {
		$pending = get_option( self::PENDING, array() );
		return is_array( $pending ) ? $pending : array();
	}

	/**
	 * Schedules the retry event at $when, with Action Scheduler when it is there (it
	 * keeps a log and runs from its own queue runner), else with wp-cron.
	 *
	 * @param int $when Unix time.
	 */
	private static function schedule( $when ) {
		if ( function_exists( 'as_schedule_single_action' ) ) {
			as_schedule_single_action( $when, self::RETRY_HOOK, array(), 'isrproxy' );
			return;
		}
		$scheduled = wp_next_scheduled( self::RETRY_HOOK );
		if ( false === $scheduled || $scheduled > $when ) {
			if ( false !== $scheduled ) {
				wp_unschedule_event( $scheduled, self::RETRY_HOOK );
			}
			wp_schedule_single_event( $when, self::RETRY_HOOK );
		}
	}

	/** Removes the retry event. */
	private static function unschedule() {
		if ( function_exists( 'as_unschedule_all_actions' ) ) {
			as_unschedule_all_actions( self::RETRY_HOOK, array(), 'isrproxy' );
			return;
		}
		wp_clear_scheduled_hook( self::RETRY_HOOK );
	}

	/** The retry event: sends every queued call that is due; a failure waits longer. */
	public static function retry() {
		$pending = self::pending();
		delete_option( self::PENDING );
		$later = array();
		foreach ( $pending as $call ) {
			if ( ! isset( $call['body'], $call['attempts'], $call['next'] ) || ! is_array( $call['body'] ) ) {
				continue;
			}
			if ( $call['next'] > time() ) {
				$later[] = $call;
				continue;
			}
			$result = self::post( $call['body'] );
			if ( true === $result ) {
				continue;
			}
			update_option(
				self::LAST_ERROR,
				array(
					'at'    => time(),
					'error' => $result,
				),
				false
			);
			$attempts = (int) $call['attempts'] + 1;
			if ( $attempts < count( self::BACKOFF ) ) {
				$call['attempts'] = $attempts;
				$call['next']     = time() + self::BACKOFF[ $attempts ];
				$call['error']    = $result;
				$later[]          = $call;
			} else {
				error_log( 'isrproxy: giving up on a revalidation after ' . $attempts . ' retries: ' . $result ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions
			}
		}
		if ( $later ) {
			// Calls queued by other requests meanwhile are kept too.
			update_option( self::PENDING, array_merge( self::pending(), $later ), false );
			self::schedule( min( array_column( $later, 'next' ) ) );
		} elseif ( ! self::pending() ) {
			delete_option( self::LAST_ERROR );
			self::unschedule(); // run by hand, or early: no event is left waiting for nothing
		}
	}
}
