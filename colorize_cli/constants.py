"""Facts that low layers and the CLI both need, with no imports: `imaging/` and `data/` read their
limits and defaults here, never through `config.py` (which reaches `nets/`)."""

# Photos larger than this many pixels are refused (decompression bombs); --max-pixels changes it.
MAX_PIXELS = 200_000_000
# The short side at which apply and eval let the network see a photo; measured on the dev
# validation split with the bundled model (docs/model-card.md, "Render size").
RENDER_SIZE = 160
# Small photos colorized together.
APPLY_BATCH_SIZE = 8
# JPEG/WebP quality of written photos, and the H.264 constant rate factor of written videos.
PHOTO_QUALITY = 95
VIDEO_CRF = 18
# Videos: the network runs on every this-many-th frame of a shot (docs/video.md chose 2), and at
# most every 25th (a second of film at 25 fps).
VIDEO_NETWORK_EVERY = 2
MAX_NETWORK_EVERY = 25
# Videos: x264's speed/size presets, fastest first (`--video-preset`), and the default: at crf 18
# `faster` kept medium's fidelity (-0.07 dB PSNR-Y, 1.5% smaller) for 1.2x the 1080p speed
# (docs/video.md, "x264's preset").
VIDEO_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
)  # fmt: skip
VIDEO_PRESET = "faster"
# Photos on `colorize eval`'s contact sheet.
SHEET_COUNT = 8

# The formats `colorize apply --format` offers: each is one that imaging/images.py writes.
PHOTO_FORMATS = ("png", "jpg", "webp", "tif", "bmp")
# The runtimes a model runs on (inference/backends.py), and what `colorize export` writes.
BACKENDS = ("auto", "tf", "onnx", "lite")
EXPORT_FORMATS = ("onnx", "tflite", "savedmodel")
QUANTIZATIONS = ("float16", "int8")  # TFLite only

# How `prepare` fits a photo into its square, and how shards may be compressed (docs/format.md).
FITS = ("crop", "pad", "resize")
COMPRESSIONS = ("none", "lzf", *(f"gzip-{level}" for level in range(1, 10)))
DEFAULT_COMPRESSION = "none"  # measured: docs/format.md "Compression"
# `colorize apply - -o -` reads at most this many bytes of stdin (an encoded photo).
MAX_STREAM_BYTES = 1 << 30

# `colorize serve` (docs/serve.md): where it listens by default, the largest request it reads, the
# memory its photos may hold before the least recently used are dropped, the long side of the
# page's previews, and the formats its download offers.
SERVE_HOST = "127.0.0.1"
SERVE_PORT = 8000
MAX_UPLOAD_BYTES = 64 << 20
SERVE_MEMORY_BYTES = 1 << 30
PREVIEW_SIDE = 1024
SERVE_FORMATS = ("png", "jpg")
