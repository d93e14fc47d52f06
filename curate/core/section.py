"""The base of every config section, apart so stage packages can declare their own sections
(curate.synth, curate.quality) and curate.config can gather them without an import cycle."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    # extra="forbid": a misspelt key fails at load, naming the key and the accepted names.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
