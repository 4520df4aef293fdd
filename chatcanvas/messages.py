"""Every user-facing string in one place."""

PROMPT_TOO_LONG = "The prompt is {n} characters; the limit is {limit}. Please shorten it."
SIZE_TOO_BIG = "The {name} {n}px is over the limit of {limit}px."
TOO_MANY_PIXELS = "{w}x{h} is more pixels than allowed ({limit} at most)."
COUNT_TOO_BIG = "{n} images is over the limit of {limit} per request."
STEPS_TOO_BIG = "{n} steps is over the limit of {limit}."
GUIDANCE_TOO_BIG = "Guidance {n} is over the limit of {limit}."
CLAMPED_PROMPT = "The prompt was cut to the {limit}-character limit."
CLAMPED_COUNT = "You asked for {n} images; the limit is {limit}, so I made {limit}."
CLAMPED_STEPS = "{n} steps is over the limit; using {limit}."
CLAMPED_SIZE = "{w}x{h} is over the size limit; using {nw}x{nh}."

BAD_SETTING = "Bad setting {var}: {problem}. {accepts}"
DEMO_MODEL_IN_USE = (
    "Using the bundled demo model (64x64 product photos: t-shirt, mug, sneaker, cap, tote bag). "
    "Set CHATCANVAS_MODEL to a real checkpoint, e.g. stabilityai/sd-turbo or a local .safetensors file."
)
MODEL_NOT_FOUND = (
    "Could not load model {model!r}: {detail}. Point CHATCANVAS_MODEL (or --model) at a local diffusers "
    "folder or .safetensors file, or a Hugging Face id while online."
)
MODEL_OFFLINE = (
    "Could not load model {model!r}: it is not in the local cache and HF_HUB_OFFLINE is set (or there is "
    "no network). Download it once while online, or point CHATCANVAS_MODEL at a local folder or file."
)
QUEUE_FULL = "The queue is full right now ({n} jobs waiting). Please try again in a minute."
USER_QUEUE_FULL = "You already have {n} images waiting (limit {limit}). Wait for them to finish first."
SERVER_QUEUE_FULL = "This server already has {n} images waiting (limit {limit}). Please try again shortly."
RATE_LIMITED = "You're asking faster than the limit of {rate} per minute. Try again in {wait:.0f} s."
JOB_TIMED_OUT = "The image took longer than {limit:.0f} s and was stopped. Try fewer steps or a smaller size."
JOB_FAILED = "Image generation failed: {detail}"
JOB_CANCELLED = "Cancelled."
JOB_INTERRUPTED = "Interrupted by a restart; it will run again."
NOT_YOUR_JOB = "That job isn't yours to cancel."
NO_SUCH_JOB = "There is no job {job_id}."
NOT_AN_IMAGE = "That file isn't an image I can read (PNG, JPEG or WebP)."
IMAGE_TOO_LARGE = "That image is too large ({detail}). The limit is {limit}."
CONTENT_POLICY = "The request was refused by the provider's content policy: {detail}"
BACKEND_TIMEOUT = "The image service did not answer within {limit:.0f} s. Please try again."
BACKEND_UNAVAILABLE = "The image service is unavailable ({detail}). Please try again later."
SPEND_LIMIT = "You've reached the {period} spending limit of ${limit:.2f} (spent ${spent:.2f})."
INTERNAL_ERROR = "Something went wrong on our side; the error was logged. Please try again."
NO_SUCH_IMAGE = "There is no image {ref}; it may have been deleted."

# ---- OpenAI images (generation/openai_backend.py, pricing.py, spending.py)
OPENAI_NO_KEY = (
    "The openai backend needs an API key: set OPENAI_API_KEY (or OPENAI_BASE_URL for a local "
    "OpenAI-compatible server)."
)
OPENAI_BAD_QUALITY = "Bad setting CHATCANVAS_OPENAI_QUALITY: {model} accepts {accepts}, not {quality!r}."
OPENAI_NO_EDITS = (
    "{model} can't edit or vary images. Set CHATCANVAS_OPENAI_IMAGE_MODEL=gpt-image-1 (or dall-e-2 with a "
    "mask) for edits and product variations."
)
OPENAI_NEEDS_MASK = "{model} can only edit inside a mask. Send a mask, or use gpt-image-1 for variations."
OPENAI_PROMPT_TOO_LONG = "The prompt is {n} characters; {model} takes at most {limit}. Please shorten it."
OPENAI_AUTH = "The image service rejected the API key ({detail}). Check OPENAI_API_KEY."
OPENAI_REJECTED = "The image service rejected the request: {detail}"
OPENAI_BAD_IMAGE = "The image service returned something that isn't an image ({detail})."
OPENAI_DOWNLOAD_FAILED = "Could not download the image the service made ({detail})."
OPENAI_DOWNLOAD_TOO_BIG = "The image the service made is larger than the {limit} byte download limit."
PRICE_MISSING = (
    "No price for {model} {quality} {size}: add it to CHATCANVAS_PRICES, "
    'e.g. {{"{model}": {{"{quality}": {{"{size}": 0.04}}}}}}.'
)
EDIT_PRICE_MISSING = (
    "No price for editing with {model} {quality} {size}: add it to CHATCANVAS_EDIT_PRICES, "
    'e.g. {{"{model}": {{"{quality}": {{"{size}": 0.04}}}}}}.'
)
SPEND_LIMIT_WOULD_EXCEED = (
    "That would cost about ${cost:.2f}, over your {period} spending limit of ${limit:.2f} "
    "(spent ${spent:.2f})."
)
SERVER_SPEND_LIMIT = (
    "This server has reached its {period} image spending limit of ${limit:.2f} (spent ${spent:.2f}; this "
    "request would cost about ${cost:.2f})."
)
USAGE_EMPTY = "No image spending recorded yet."

# ---- web adapter, uploads, product variations
NO_PRODUCT_FOUND = (
    "I couldn't find a product in that photo: it looks like a plain background. "
    "Send a photo of the product on a white or plain background, or add a mask."
)
BUSY_BACKGROUND = (
    "The background of that photo isn't plain enough to cut the product out. "
    "Use a photo on a white or uniform background, or send a mask (white = product, black = keep)."
)
MASK_SIZE_MISMATCH = "The mask is {mw}x{mh} but the photo is {w}x{h}; they must be the same size."
NO_VARIATIONS = 'Say which variations you want, e.g. ["red", "navy", "forest green"].'
TOO_MANY_VARIATIONS = "{n} variations is over the limit of {limit} per request."
BAD_VARIATION = 'Each variation is a short description (1-{limit} characters), like "navy" or "forest green".'
EMPTY_MASK = "The mask is all black: paint the product white (white = the product to recolour, black = keep)."
UNKNOWN_COLOUR = "I don't know the colour {name!r}. Did you mean {suggestions}? A hex code like #e07b39 works too."
UNKNOWN_COLOUR_NO_SUGGESTION = (
    "I don't know the colour {name!r}. Use a colour name (navy, forest green, dusty rose) or a hex code like #e07b39."
)
ONE_COLOUR_PER_VARIATION = "{text!r} names several colours ({colours}); give each colour as its own variation."
COLOURWAY_NEEDS_COLOUR = "A colourway needs the product photo and a colour (ImageSpec.colourway with its hex)."
MATERIAL_NEEDS_COLOUR = "Say which colour {text!r} should be in, e.g. \"tan leather\"."
UNSUPPORTED_MEDIA = "Please upload a PNG, JPEG or WebP image (got {content_type})."
UPLOAD_MISSING = 'Attach the product photo as the form field "image".'
API_KEY_MISSING = 'This server needs an API key: send it as "Authorization: Bearer <key>".'
API_KEY_INVALID = "That API key isn't valid."
API_KEY_QUOTA = "This API key has used its {limit} images for today. The quota resets at midnight UTC."
WEB_LOCALHOST_ONLY = (
    "No API keys are set (CHATCANVAS_API_KEYS), so the web server listens on 127.0.0.1 only "
    "(asked for {host}). Set CHATCANVAS_API_KEYS to serve other machines."
)
WEB_LISTENING = "Web chat at http://{host}:{port}/ (API docs at /docs)."
BAD_REQUEST_BODY = "The request body is not valid: {detail}"
SHUTTING_DOWN = "The assistant is restarting; please send that again in a moment."
JOB_GAVE_UP = "This job was interrupted {n} times and was given up."
SERVER_RATE_LIMITED = "This server is asking faster than {rate} per minute. Try again in {wait:.0f} s."

# ---- Slack adapter
SLACK_USAGE = "Tell me what to draw, e.g. `{command} a red mug on a wooden table, studio light`."
SLACK_CHANNEL_NOT_ALLOWED = (
    "I don't make images in this channel. Ask an admin to add it to CHATCANVAS_SLACK_CHANNELS."
)
SLACK_DMS_NOT_ALLOWED = "I don't take requests in direct messages here; ask in one of the allowed channels."
SLACK_NOT_IN_CHANNEL = "I'm not a member of this channel yet: invite me with `/invite @{bot}` and ask again."
SLACK_ASKED = "<@{user}> asked: {text}"
SLACK_QUEUED = "Queued: {ahead} ahead of you."
SLACK_QUEUED_NEXT = "Queued: you're next."
SLACK_STARTED = "Painting…"
SLACK_PROGRESS = "Painting… {percent}% (step {step}/{total})"
SLACK_DONE = "Done."
SLACK_FAILED = "Failed: {reason}"
SLACK_CANCELLED = "Cancelled."
SLACK_REFUSED = "Sorry, I can't do that: {reason}"
SLACK_RETRY_AFTER = " Try again in {seconds:.0f} s."
SLACK_PROMPT = "*Prompt:* {prompt}"
SLACK_BUTTON_REROLL = "Reroll"
SLACK_BUTTON_VARY = "Variations"
SLACK_BUTTON_RECIPE = "Recipe"
SLACK_IMAGE_LABEL = "Image {n}"
SLACK_FILE_TOO_BIG = "That file is {size} bytes; the limit is {limit} bytes."
SLACK_FILE_UNREADABLE = "I couldn't download that file from Slack ({detail})."
SLACK_NO_SUCH_IMAGE = "I can't find that image any more; it may have been deleted."

# ---- Discord adapter
DISCORD_QUEUED = "⏳ Queued — position {position} in line."
DISCORD_STARTING = "⏳ Starting…"
DISCORD_PROGRESS = "🎨 Painting… {percent}% `{bar}`"
DISCORD_DONE_ONE = "**{prompt}**"
DISCORD_RECIPE_LINE = "-# seed {seed} · {width}x{height} · {steps} steps · {backend}"
DISCORD_NOT_HERE_GUILD = "I'm not enabled in this server. Ask an admin to add it to DISCORD_GUILDS."
DISCORD_NOT_HERE_CHANNEL = "I'm not enabled in this channel. Try one of: {channels}."
DISCORD_NO_DMS = "I don't take requests in direct messages here; please use a server channel."
DISCORD_NSFW_ONLY = "Image commands only run in age-restricted (NSFW) channels on this server."
DISCORD_COOLDOWN = "Slow down a little: you can ask again in {wait:.0f} s."
DISCORD_BUSY_USER = "You already have {n} request(s) running here. Wait for them to finish first."
DISCORD_NO_IMAGE = "That image is no longer available (id {image_id})."
DISCORD_NOT_AN_ATTACHMENT = "Please attach a PNG, JPEG or WebP photo."
DISCORD_NO_VARIATIONS = "List at least one variation, separated by commas (e.g. `navy, forest green`)."
DISCORD_UPLOAD_TOO_BIG = "That file is {size} bytes; the limit is {limit} bytes."
DISCORD_SETTINGS_NONE = "You have no saved defaults. Set some with `/settings aspect:… count:… style:…`."
DISCORD_SETTINGS_SHOW = "Your defaults:\n{lines}"
DISCORD_SETTINGS_SAVED = "Saved. Your defaults:\n{lines}"
DISCORD_SETTINGS_CLEARED = "Your defaults are cleared."
DISCORD_HISTORY_NONE = "You haven't made any images yet. Try `/imagine`."
DISCORD_HISTORY_HEAD = "Your recent images:"
DISCORD_EMPTY_MENTION = "Tell me what to draw, e.g. `@{name} a canvas tote in navy, studio light`."
DISCORD_BAD_BACKEND = "Unknown backend {name!r}; choose one of: {choices}."
SLACK_NEEDS_TOKEN = "Set SLACK_BOT_TOKEN (the app's xoxb- bot token) to run the Slack adapter."
SLACK_NEEDS_SECRET = (
    "Set SLACK_SIGNING_SECRET to receive Slack requests over HTTP, "
    "or SLACK_APP_TOKEN (xapp-) for Socket Mode."
)
SLACK_LISTENING = "Slack: listening for requests at http://{host}:{port}/slack/events"
SLACK_SOCKET_MODE = "Slack: connected in Socket Mode"
DISCORD_NO_TOKEN = (
    "DISCORD_TOKEN is not set. Create a bot at https://discord.com/developers and set its token."
)

# ---- rewriter and agent (chatcanvas/bot/offline_rewriter.py, agent.py, tools/)
REWRITE_VARIATIONS = "Making {n} images, one each: {items}."
MIDJOURNEY_IGNORED = "Left out Midjourney parameters that Stable Diffusion and DALL-E have no use for: {params}."
REWRITE_TOKENS_OVER = (
    "The prompt is about {n} tokens; Stable Diffusion reads only the first {limit}, so the words from "
    "“{tail}” on may be ignored. Shorten the request to keep every word."
)
REWRITE_GREETING = (
    "Hi! Tell me what to draw, e.g. “our tote bag in red, navy and forest green” or "
    "“a wide banner of a mountain lake at sunset”."
)
REWRITE_HELP = (
    "Describe the picture you want in your own words. You can ask for several at once (“3 of…”, "
    "“in red, blue and green”), a format (wide, portrait, square, 16:9), a style (photo, product shot, "
    "watercolour, line art, 3D render, anime, pixel art…), and edit the last one (“make it blue”, "
    "“again but wider”)."
)
REWRITE_SETTINGS = (
    "Limits: up to {max_count} images per request, {max_side}px per side, {max_pixels} pixels per image, "
    "{max_steps} steps. Styles: {styles}."
)
REWRITE_PROMPTS = "Prompt: {prompt}"
AGENT_FALLBACK = "The language model is unavailable right now ({detail}), so I used the built-in rewriter."
AGENT_TIMEOUT = "the model did not answer in {limit:.0f} s"
AGENT_RATE_LIMITED = "the model's rate limit was hit"
AGENT_SERVER_ERROR = "the model's server answered with an error"
AGENT_BAD_TOOL_CALL = "the model sent a malformed tool call"
AGENT_NO_TOOL_CALL = "the model did not call an image tool"
AGENT_FAILED = "I couldn't reach the language model ({detail}). Please try again in a moment."
TOOL_CLAMPED = "Limited to the configured maximum: {notes}"
TOOL_PROMPT_TOO_LONG = (
    "The prompt is {n} tokens; the Stable Diffusion text encoder reads {limit}. Shorten it (drop the least "
    "important phrases, keep the subject) and call the tool again."
)
TOOL_NO_IMAGE = "There is no image to vary: attach a product photo (PNG, JPEG or WebP) and ask again."
TOOL_BUDGET_SPENT = "The limit of {limit} images for this request is reached; no more images were made."
TOOL_QUEUED = "Queued {n} image(s): {prompt}"
TOOL_MADE = "Made {n} image(s) for: {prompt}"
AGENT_UNREACHABLE = "the model's server could not be reached"
AGENT_UNEXPECTED = "the model's answer could not be used"
AGENT_NO_LEAK = "I can't share my instructions, but I'm happy to make images: tell me what to draw."
REWRITE_NOTHING_TO_EDIT = "There's no earlier image here to change yet. Describe the picture you'd like."

# ---- policy (each refusal names its rule)
REFUSAL_RULE = "{reason} (rule: {rule})"
BACKEND_NOT_ALLOWED = "Backend {backend!r} is not allowed here; this place may use: {allowed}."
MODEL_NOT_ALLOWED = "Model {model!r} is not allowed here; ask for one of: {allowed}."
MODEL_NOT_ALLOWED_NONE = "Choosing a model is not allowed here; the configured model is used."
NOT_YOUR_IMAGE = "You can't use image {ref} here: it isn't yours and wasn't shared in this conversation."

# ---- safety (chatcanvas/safety/): refusals name their rule
BLOCKED_TERM = "That request uses a word that isn't allowed here ({label})."
BLOCKED_TERMS_BAD_REGEX = "Bad setting CHATCANVAS_BLOCKED_TERMS: {label} is not a valid regular expression ({error})."
BLOCKED_TERMS_NO_FILE = "Bad setting CHATCANVAS_BLOCKED_TERMS: cannot read the term list {path} ({error})."
MODERATION_FLAGGED = "That request was flagged by moderation: {categories}."
MODERATION_UNAVAILABLE = "I can't check requests right now (moderation unavailable). Please try again shortly."
NOT_AN_IMAGE_ID = "That isn't an image id. Images are referred to by the id they were stored under; upload it first."
AUDIT_EMPTY = "No refusals recorded."

# ---- samplers, hires fix, A1111 parameters, checkpoints (generation/samplers.py, hires.py, metadata.py, model_loading.py)
UNKNOWN_SAMPLER = "Unknown sampler {name!r}. Known samplers: {known}."
UNKNOWN_SCHEDULE = "Unknown schedule type {name!r}. Known schedule types: {known}."
SCHEDULE_NOT_FOR_SAMPLER = "The {sampler} sampler doesn't take the {schedule} schedule type; it takes: {ok}."
SCHEDULE_NEEDS_SAMPLER = (
    "The model's own scheduler ({sampler}) doesn't take the {schedule} schedule type; name a sampler too, "
    "e.g. --sampler 'DPM++ 2M'."
)
HIRES_TEXT_ONLY = "Hires fix works on text-to-image only, not with an init image."
HIRES_TOO_BIG = "With hires fix x{scale:g} the image would be {w}x{h}; the limit is {limit}."
HIRES_CLAMPED = "With hires fix x{scale:g}, {w}x{h} is over the size limit; starting from {nw}x{nh}."
FROM_PNG_NOT_HONOURED = "Not honoured from the PNG: {fields}"
SINGLE_FILE_UNKNOWN = (
    "Could not tell which model family {model!r} is (SD 1.x, SD 2.x or SDXL) from its weights: {detail}."
)
SINGLE_FILE_UNSUPPORTED = "{model!r} is an {kind} checkpoint; use an SD 1.x, SD 2.x or SDXL base checkpoint."
SINGLE_FILE_OFFLINE = (
    "Could not load the single-file checkpoint {model!r} ({family}) offline: diffusers needs the configs of "
    "its model family. Set CHATCANVAS_SINGLE_FILE_CONFIG to a local diffusers folder of the same family "
    "(e.g. a saved stable-diffusion-v1-5 or stable-diffusion-xl-base-1.0), or load it once while online."
)
CPU_OFFLOAD_NEEDS_ACCELERATE = "CHATCANVAS_CPU_OFFLOAD needs the accelerate package: pip install accelerate."
SIGNING_KEY_BROKEN = "The image URL signing key {path} is not a key chatcanvas wrote; delete it and a new one is made."

# ---- provenance: C2PA Content Credentials and the invisible watermark (provenance/)
C2PA_MISSING = (
    "Content Credentials need the c2pa-python package: pip install 'c2pa-python>=0.38,<0.39' "
    "(or set CHATCANVAS_PROVENANCE=off to make images without them)."
)
C2PA_CREDENTIAL_UNREADABLE = "Bad setting {var}: cannot read {path} ({error})."
C2PA_CREDENTIAL_BAD = (
    "The C2PA signing credentials can't be used ({detail}). CHATCANVAS_C2PA_CERT must be a PEM certificate "
    "chain (signing certificate first) and CHATCANVAS_C2PA_KEY its ES256 (P-256) private key."
)
API_KEY_TOO_SHORT = (
    "{n} key(s) shorter than {min} characters; use long random keys (`openssl rand -hex 16` makes one)"
)
C2PA_NEEDS_BOTH = "set CHATCANVAS_C2PA_CERT and CHATCANVAS_C2PA_KEY together, or neither"
C2PA_SIGN_FAILED = (
    "Could not sign the image's Content Credentials ({detail}). Set CHATCANVAS_PROVENANCE=off to make images "
    "without them."
)
VERIFY_OURS = "Made by a model with chatcanvas ({model}): Content Credentials valid, signed by {signer} ({trust})."
VERIFY_OTHER = "Content Credentials valid, but made by {generator}, not chatcanvas; signed by {signer} ({trust})."
VERIFY_ALTERED = "Altered after signing: the pixels or metadata are not the ones {generator} signed."
VERIFY_INVALID = "Content Credentials present but not valid."
VERIFY_ABSENT = "No Content Credentials."
VERIFY_UNREADABLE = "Can't check this file: {reason}"
VERIFY_TRUSTED = "a trusted signer"
VERIFY_UNTRUSTED = "untrusted signer: self-issued or not on a trust list given to this reader"
VERIFY_WATERMARK_FOUND = "The chatcanvas watermark is in the pixels."
VERIFY_WATERMARK_NONE = "No chatcanvas watermark in the pixels."
VERIFY_WATERMARK_SMALL = "Too small to carry the watermark."

# ---- LoRA, upscaling, outpainting (generation/lora.py, upscale.py, outpaint.py)
LORA_MISSING = "No LoRA named {names} in {folder}. Available: {known}. (`chatcanvas loras` lists them.)"
LORA_NONE_AVAILABLE = "none"
LORA_DIR_UNSET = "The prompt asks for LoRA {names}, but no LoRA folder is set: set CHATCANVAS_LORA_DIR."
LORA_BAD_WEIGHT = "Can't read the weight in {tag}; write it like <lora:name:0.8>."
LORA_UNREADABLE = "Could not load LoRA {name}: {detail}. Is it a LoRA for this model?"
LORA_NEEDS_PEFT = "LoRA needs the peft package: pip install 'chatcanvas[local]' (or pip install peft)."
LORA_LIST_EMPTY = "No LoRA files in {folder}."
LORA_LIST_UNSET = "No LoRA folder: set CHATCANVAS_LORA_DIR to a folder of .safetensors LoRA files."
UPSCALE_TOO_BIG = (
    "Upscaling {w}x{h} by {scale} would make {nw}x{nh} ({pixels} pixels); the limit is {limit} pixels "
    "(CHATCANVAS_MAX_UPSCALE_PIXELS)."
)
UPSCALE_BAD_SCALE = "Upscale by 2 or 4, not {scale}."
UPSCALER_NEEDS_SPANDREL = (
    "CHATCANVAS_UPSCALER is set, which needs the spandrel package: pip install 'chatcanvas[upscale]'."
)
UPSCALER_NOT_FOUND = "CHATCANVAS_UPSCALER={path}: no such file."
UPSCALER_UNREADABLE = "CHATCANVAS_UPSCALER={path} is not an upscaler spandrel can read: {detail}"
OUTPAINT_NOTHING = "Say how far to extend the image: --left/--right/--up/--down PX, --zoom-out or --banner."
OUTPAINT_TOO_BIG = (
    "Extending {w}x{h} to {nw}x{nh} goes past the size limit ({why}); extend by less, or raise "
    "CHATCANVAS_MAX_SIDE / CHATCANVAS_MAX_PIXELS."
)
OUTPAINT_BAD_ZOOM = "Zoom out by 1.5 or 2, not {zoom}."
NO_SUCH_FILE = "No such file: {path}"
DISCORD_SPLIT_UPLOAD = "-# Sent in {n} messages: Discord takes at most {limit} MiB per message."
VERIFY_UPLOAD_MISSING = 'Send the image as the form field "image", or as the request body (Content-Type image/png).'
IMAGE_REF_NOT_AN_ID = "The {field} must be an image id from this service (an upload or a result), not {ref!r}."
SAFETY_CHECKER_BLOCKED = "The model's safety checker blocked {n} of {total} images; they were not kept."

# ---- operations: readiness, admin commands, usage (chatcanvas/ops/, bot/admin.py, bot/controls.py)
NOT_READY_STARTING = "Starting up: the app is not built yet."
NOT_READY_LOADING = "The {backend} backend is still loading its model."
NOT_READY_NOT_LOADED = (
    "The {backend} backend has no model loaded: the engine is not started, or loading failed (see the log; "
    "`chatcanvas doctor` checks the model)."
)
NOT_READY_STORE = "The store at {path} takes no writes: {detail}. Check the disk and CHATCANVAS_DATA_DIR."
READY = "ready"
OPS_YOU_ARE_BANNED = "You can't make images here: an admin has blocked you."
OPS_BACKEND_PAUSED = "The {backend} backend is paused by an admin. Please try again later."
OPS_GPU_SECONDS_LIMIT = (
    "You've used {used:.0f} s of image-making time today; the daily limit is {limit:.0f} s. It resets at "
    "midnight UTC."
)
OPS_BAD_USER_KEY = "{text!r} is not a user: write platform:user (everywhere) or platform:server:user."
OPS_PAUSED_LINE = "Paused: {backends}"
OPS_QUEUE_EMPTY = "Nothing is running or waiting."
OPS_QUEUE_HEAD = "{running} running, {waiting} waiting:"
OPS_QUEUE_MORE = "… and {n} more."
OPS_CANCEL_FINISHED = "Job {job_id} is already {status}."
OPS_CANCELLED_BY_OPERATOR = "Cancelled by an admin."
OPS_CANCELLED = "Cancelled job {job_id} (asked by {user})."
OPS_UNKNOWN_BACKEND = "There is no backend {backend!r}; the backends are: {known}."
OPS_PAUSED = "Paused {backend}: nothing new is admitted for it and its queued jobs wait. `resume {backend}` lets them run."
OPS_ALREADY_PAUSED = "{backend} is already paused."
OPS_RESUMED = "Resumed {backend}: its queued jobs run again."
OPS_NOT_PAUSED = "{backend} isn't paused."
OPS_WHERE_SERVER = "in this server"
OPS_WHERE_EVERYWHERE = "everywhere"
OPS_BAN_SELF = "You can't ban yourself."
OPS_BANNED = "Banned {user} {where}: their requests are refused until `unban`."
OPS_ALREADY_BANNED = "{user} is already banned {where}."
OPS_UNBANNED = "Unbanned {user}."
OPS_NOT_BANNED = "{user} isn't banned here."
OPS_USAGE_EMPTY = "No usage recorded this month."
OPS_USAGE_GPU_LIMIT = "Daily GPU-seconds limit per user: {limit:.0f} s."
OPS_NOT_ADMIN_DISCORD = "Only members with the Manage Server permission can use /chatcanvas-admin."
OPS_NOT_ADMIN_SLACK = "Only workspace admins and owners (or users in CHATCANVAS_SLACK_ADMINS) can use `{command} admin`."
OPS_SLACK_ADMIN_USAGE = (
    "Usage: `{command} admin queue` · `cancel JOB` · `pause BACKEND` · `resume BACKEND` · `ban @user` · "
    "`unban @user` · `usage [@user]`"
)
OPS_SLACK_NEEDS_USER = "Name the user: `{command} admin {verb} @someone`."
OPS_SLACK_ADMIN_CHECK_FAILED = "Could not check that you are an admin (users.info: {error})."
OPS_METRICS_OFF = "Metrics are not installed in this app."
OPS_METRICS_LISTENING = "metrics, /healthz and /readyz on http://{host}:{port}"
OPS_METRICS_PORT_BUSY = "Could not listen on {host}:{port} for metrics ({detail}). Set CHATCANVAS_METRICS_PORT to a free port."

# ---- Ray Serve image workers (generation/ray_backend.py, cli_workers.py)
RAY_WAITING = "Waiting for the image workers, which are unreachable (up to {left:.0f} s more)."
RAY_WORKERS_DOWN = "The image workers are down, so this picture could not be made yet. Please ask again in a few minutes."
RAY_WORKERS_DOWN_LOG = (
    "The Ray image workers are unreachable (cluster {address}, application {app!r}: {detail}). Jobs wait up to "
    "{wait:.0f} s for them; start them with `chatcanvas workers`."
)
RAY_WORKERS_BACK = "The Ray image workers are back (cluster {address}, application {app!r})."
RAY_REPLICA_LOST = "The image worker stopped {n} times while making this picture, so it was given up."
RAY_MODEL_MISMATCH = (
    "This request is for the model {asked!r} but the image workers serve {serving!r}: give the bot and "
    "`chatcanvas workers` the same CHATCANVAS_MODEL."
)
RAY_NOT_INSTALLED = "The ray backend and `chatcanvas workers` need Ray Serve: pip install 'chatcanvas[ray]'."
RAY_WORKERS_READY = (
    "ready: {replicas} replica(s) of {model} on Ray at {address}, application {app!r}. Ctrl-C stops them."
)
RAY_WORKERS_STOPPING = "stopping the image workers…"
RAY_WORKERS_STOPPED = "stopped."
RAY_WORKERS_FAILED = "The image workers could not start: {detail}"
BACKEND_CANNOT = "The {backend} backend can't do {mode} (making a picture from another); try the local backend."
BUTTON_ZOOM_OUT_15 = "Zoom out 1.5×"
BUTTON_ZOOM_OUT_2 = "Zoom out 2×"
BUTTON_PAN_LEFT = "Pan ←"
BUTTON_PAN_RIGHT = "Pan →"
BUTTON_PAN_UP = "Pan ↑"
BUTTON_PAN_DOWN = "Pan ↓"
BUTTON_BANNER = "Make a banner (3:1)"
UNKNOWN_BUTTON = "Unknown action {action!r}; one of: {known}."

# ---- chatcanvas doctor (ops/doctor.py)
DOCTOR_LINE_OK = "✓ {name}: {detail}"
DOCTOR_LINE_FAIL = "✗ {name}: {detail}"
DOCTOR_LINE_FIX = "    fix: {fix}"
DOCTOR_LINE_SKIP = "- {name}: skipped: {detail}"
DOCTOR_ALL_OK = "All required checks passed."
DOCTOR_SOME_FAILED = "{n} required check(s) failed."
DOCTOR_CONFIG_OK = "every setting is valid (backend {backend}, model {model})"
DOCTOR_CONFIG_FIX = "set {var} to a value it accepts, or unset it; .env.example documents every setting"
DOCTOR_NEEDS_CONFIG = "needs a valid configuration first"
DOCTOR_NEEDS_DATA = "needs a writable data folder first"
DOCTOR_DATA_OK = "{path} is writable, {free:.1f} GB free, the store opens ({migrations} migrations applied)"
DOCTOR_DATA_LOW = "{path} has only {free_mb:.0f} MB free (at least {need_mb} MB are needed for the store and images)"
DOCTOR_DATA_UNWRITABLE = "{path} is not writable: {detail}"
DOCTOR_DATA_FIX = "set CHATCANVAS_DATA_DIR to a folder this user can write, on a disk with room"
DOCTOR_STORE_BROKEN = "the store at {path} does not open: {detail}"
DOCTOR_MODEL_OK = "loaded {model} on {device} and drew one {w}x{h} image in 1 step ({seconds:.1f} s)"
DOCTOR_MODEL_OTHER = "backend {backend} made ({model})"
DOCTOR_MODEL_FIX = "point CHATCANVAS_MODEL at a diffusers folder or .safetensors file (unset: the demo model)"
DOCTOR_MODEL_SKIPPED = "--skip-model given"
DOCTOR_MODEL_REMOTE = "the {backend} backend draws remotely; see the OpenAI check"
DOCTOR_NOT_CONFIGURED = "not configured ({var} unset)"
DOCTOR_OFFLINE = "offline: the live check was not made (--offline)"
DOCTOR_NO_NETWORK = "could not reach {host} ({detail}); the live check was not made"
DOCTOR_SLACK_SHAPE = "SLACK_BOT_TOKEN does not look like a bot token (xoxb-...)"
DOCTOR_SLACK_SHAPE_FIX = "use the Bot User OAuth Token from your app's OAuth & Permissions page"
DOCTOR_SLACK_NO_SECRET = "set SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (xapp-..., Socket Mode)"
DOCTOR_SLACK_APP_SHAPE = "SLACK_APP_TOKEN does not look like an app-level token (xapp-...)"
DOCTOR_SLACK_OK = "auth.test: team {team}, bot user {user}"
DOCTOR_SLACK_SHAPE_OK = "the tokens look right (no live check)"
DOCTOR_SLACK_REFUSED = "auth.test answered {error}"
DOCTOR_SLACK_FIX = "check SLACK_BOT_TOKEN (reinstall the app to get a fresh one) and SLACK_API_URL"
DOCTOR_DISCORD_SHAPE = "DISCORD_TOKEN does not look like a bot token (three dot-separated parts)"
DOCTOR_DISCORD_FIX = "copy the token from the Developer Portal, Bot page (Reset Token)"
DOCTOR_DISCORD_OK = "users/@me: logged in as {name} ({id})"
DOCTOR_DISCORD_SHAPE_OK = "the token looks right (no live check)"
DOCTOR_DISCORD_REFUSED = "users/@me answered HTTP {status}"
DOCTOR_OPENAI_MISSING = "CHATCANVAS_BACKEND=openai needs OPENAI_API_KEY"
DOCTOR_OPENAI_SHAPE = "OPENAI_API_KEY does not look like an OpenAI key (sk-...)"
DOCTOR_OPENAI_FIX = "set OPENAI_API_KEY to a key from platform.openai.com (or OPENAI_BASE_URL for another server)"
DOCTOR_OPENAI_OK = "models: {n} models at {base}{extra}"
DOCTOR_OPENAI_MODEL_LISTED = ", {model} among them"
DOCTOR_OPENAI_MODEL_MISSING = "models: {model} is not offered at {base}"
DOCTOR_OPENAI_SHAPE_OK = "the key looks right (no live check)"
DOCTOR_OPENAI_REFUSED = "models answered HTTP {status}"
USAGE_HEAD_OPENAI = "OpenAI image spend, by user:"
USAGE_HEAD_BY_USER = "Every backend this month, by user (GPU-s: seconds of the local backend's time, shared within a batch):"
USAGE_HEAD_BY_SERVER = "By server:"
DISCORD_CHECK_NO_IMAGE = "That message has no image to check."
SLACK_CHECK_NO_IMAGE = "That message has no image to check."
# ---- start-up and progress (generation/engine.py warm-up, the terminal's progress bar)
WARMING_UP = "Warming up: the model is still loading. Your request is queued and your image is next."
WARMING_UP_BEHIND = "Warming up: the model is still loading. Your request is queued, {n} ahead of it."
PROGRESS_LOADING = "loading model"
PROGRESS_QUEUED = "queued ({n} ahead)"
PROGRESS_GENERATING = "generating"
SLACK_BUTTON_UPSCALE = "Upscale 2×"
