"""Platform text rules: how long a post is on each social network, and what it contains.

text/ is used by the social renderer to measure and split posts. It knows how X, Bluesky,
Mastodon, Threads and LinkedIn count a post's length (:mod:`.length`), which spans are URLs,
mentions, hashtags and cashtags that must not be cut (:mod:`.extract`), and how Bluesky
rich-text facets are built (:mod:`.bluesky`). Everything here is a pure function of the text.
"""

from aspdigest.text.bluesky import (
    BLUESKY_MAX_BYTES,
    BLUESKY_MAX_GRAPHEMES,
    Facet,
    bluesky_bytes,
    bluesky_facets,
    bluesky_length,
    bluesky_shorten_links,
    shorten_display_url,
)
from aspdigest.text.extract import (
    Entity,
    entities,
    extract_cashtags,
    extract_hashtags,
    extract_mastodon_mentions,
    extract_mastodon_urls,
    extract_mentions,
    extract_urls,
)
from aspdigest.text.length import (
    LINKEDIN_MAX_CHARS,
    MASTODON_MAX_CHARS,
    RULES,
    THREADS_MAX_CHARS,
    THREADS_MAX_LINKS,
    X_MAX_WEIGHTED_LENGTH,
    PlatformRule,
    check,
    linkedin_escape,
    linkedin_length,
    mastodon_length,
    mastodon_rule,
    threads_length,
    threads_link_count,
    x_weighted_length,
)

__all__ = [
    "BLUESKY_MAX_BYTES",
    "BLUESKY_MAX_GRAPHEMES",
    "LINKEDIN_MAX_CHARS",
    "MASTODON_MAX_CHARS",
    "RULES",
    "THREADS_MAX_CHARS",
    "THREADS_MAX_LINKS",
    "X_MAX_WEIGHTED_LENGTH",
    "Entity",
    "Facet",
    "PlatformRule",
    "bluesky_bytes",
    "bluesky_facets",
    "bluesky_length",
    "bluesky_shorten_links",
    "check",
    "entities",
    "extract_cashtags",
    "extract_hashtags",
    "extract_mastodon_mentions",
    "extract_mastodon_urls",
    "extract_mentions",
    "extract_urls",
    "linkedin_escape",
    "linkedin_length",
    "mastodon_length",
    "mastodon_rule",
    "shorten_display_url",
    "threads_length",
    "threads_link_count",
    "x_weighted_length",
]
