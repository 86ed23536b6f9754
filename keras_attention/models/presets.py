"""Transformer configurations as frozen dataclasses, and the named presets."""

import dataclasses

from keras_attention import validation
from keras_attention.constants import POSITION_ENCODINGS


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """Architecture of an encoder-decoder Transformer.

    ``hidden_dim`` must be divisible by ``num_heads``. ``share_embeddings``
    uses one token embedding for source and target (needs equal vocabulary
    sizes); ``tie_output_embeddings`` computes logits with the transposed
    target embedding instead of a separate output layer. ``copy_attention``
    adds a pointer-generator copy mechanism (See et al., 2017): the outputs
    become log-probabilities of a mix of the vocabulary softmax and the last
    decoder layer's cross-attention over the source ids (needs
    ``share_embeddings``, so that a source id is a target id).
    ``attention_heads``: the heads an attention layer keeps after pruning
    (``keras_attention.models.pruning``), by layer name
    (``encoder_block_0/self_attention``, ``decoder_block_1/cross_attention``,
    ...); the others have ``num_heads``. Every head has ``head_dim =
    hidden_dim // num_heads``.
    """

    encoder_vocabulary_size: int = 8000
    decoder_vocabulary_size: int = 8000
    num_encoder_layers: int = 3
    num_decoder_layers: int = 3
    hidden_dim: int = 256
    num_heads: int = 4
    intermediate_dim: int = 1024
    dropout: float = 0.1
    max_sequence_length: int = 256
    activation: str = "relu"
    layer_norm_epsilon: float = 1e-5
    normalize_first: bool = False
    position_encoding: str = "sinusoidal"
    share_embeddings: bool = False
    tie_output_embeddings: bool = False
    copy_attention: bool = False
    attention_heads: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for name in (
            "encoder_vocabulary_size",
            "decoder_vocabulary_size",
            "num_encoder_layers",
            "num_decoder_layers",
            "hidden_dim",
            "num_heads",
            "intermediate_dim",
            "max_sequence_length",
        ):
            validation.check_positive_int(name, getattr(self, name))
        if self.hidden_dim % self.num_heads:
            raise ValueError(
                f"hidden_dim={self.hidden_dim} must be divisible by num_heads={self.num_heads}."
            )
        validation.check_rate("dropout", self.dropout, what="in [0, 1)")
        validation.check_positive_number("layer_norm_epsilon", self.layer_norm_epsilon,
                                         what="positive")
        if self.position_encoding not in POSITION_ENCODINGS:
            raise ValueError(
                f"position_encoding must be one of {POSITION_ENCODINGS}, "
                f"got {self.position_encoding!r}."
            )
        if self.share_embeddings and self.encoder_vocabulary_size != self.decoder_vocabulary_size:
            raise ValueError(
                "share_embeddings needs one vocabulary: encoder_vocabulary_size="
                f"{self.encoder_vocabulary_size} != decoder_vocabulary_size="
                f"{self.decoder_vocabulary_size}; build a shared vocabulary or set "
                "share_embeddings=False."
            )
        self._check_attention_heads()
        if not isinstance(self.copy_attention, bool):
            raise ValueError(f"copy_attention must be true or false, got {self.copy_attention!r}.")
        if self.copy_attention and not self.share_embeddings:
            raise ValueError(
                "copy_attention needs share_embeddings=True (one vocabulary, so a source id "
                "is a target id); set share_embeddings=True and build a shared vocabulary."
            )

    @property
    def head_dim(self):
        """The size of every attention head."""
        return self.hidden_dim // self.num_heads

    def attention_layer_names(self):
        """The names of the attention layers, encoder first."""
        names = [f"encoder_block_{i}/self_attention" for i in range(self.num_encoder_layers)]
        for i in range(self.num_decoder_layers):
            names += [f"decoder_block_{i}/self_attention", f"decoder_block_{i}/cross_attention"]
        return names

    def heads(self, layer_name):
        """The heads of the attention layer ``layer_name``."""
        return self.attention_heads.get(layer_name, self.num_heads)

    def _check_attention_heads(self):
        if not isinstance(self.attention_heads, dict):
            raise ValueError(
                f"attention_heads must map attention layer names to head counts, got "
                f"{self.attention_heads!r}."
            )
        known = self.attention_layer_names()
        for name, count in self.attention_heads.items():
            if name not in known:
                raise ValueError(
                    f"attention_heads names {name!r}, not an attention layer of this model; "
                    f"known: {', '.join(known)}."
                )
            validation.check_positive_int(f"attention_heads[{name!r}]", count)
            if count > self.num_heads:
                raise ValueError(
                    f"attention_heads[{name!r}]={count} exceeds num_heads={self.num_heads}."
                )

    def replace(self, **changes):
        """A copy with ``changes`` applied (validated again)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(
                f"unknown TransformerConfig field(s) {unknown}; known: "
                f"{[f.name for f in dataclasses.fields(self)]}."
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)


PRESETS = {
    # For tests and the demo: trains in seconds on a CPU.
    "tiny": TransformerConfig(
        num_encoder_layers=2,
        num_decoder_layers=2,
        hidden_dim=64,
        num_heads=4,
        intermediate_dim=128,
        dropout=0.0,
        max_sequence_length=64,
    ),
    # Multi30k-sized tasks on a few CPU cores or one GPU.
    "small": TransformerConfig(
        num_encoder_layers=3,
        num_decoder_layers=3,
        hidden_dim=256,
        num_heads=4,
        intermediate_dim=1024,
        dropout=0.1,
        max_sequence_length=256,
    ),
    # Transformer base (Vaswani et al., 2017): 6+6 layers, d512, 8 heads, ff 2048.
    "base": TransformerConfig(
        num_encoder_layers=6,
        num_decoder_layers=6,
        hidden_dim=512,
        num_heads=8,
        intermediate_dim=2048,
        dropout=0.1,
        max_sequence_length=512,
    ),
    # Abstractive summarization (SAMSum, CNN/DailyMail): one shared, tied
    # vocabulary and long sources (SAMSum dialogues reach ~800 subword tokens).
    # Recipes turn on the copy mechanism with ``copy_attention: true``.
    "summarization": TransformerConfig(
        num_encoder_layers=3,
        num_decoder_layers=3,
        hidden_dim=256,
        num_heads=4,
        intermediate_dim=1024,
        dropout=0.1,
        max_sequence_length=1024,
        share_embeddings=True,
        tie_output_embeddings=True,
    ),
}


def get_preset(name, **changes):
    """The preset ``name`` with ``changes`` (e.g. vocabulary sizes) applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
    return PRESETS[name].replace(**changes)
