"""Personal data masked on its way to an external model, and restored in its reply.

`Masking` is the interceptor (`podium.models.interceptors`) that does it for an agent's
model calls; the run's vault (`run_vault`) is shared with the masking of external tools'
arguments (`podium.tools.interceptors.ToolMasking`), so a placeholder means the same value
to the model and to the tool.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from podium.core.agent import TaskContext, VaultStore
from podium.models.base import Message, ModelResponse, ToolCall
from podium.models.interceptors import ModelCallInput, ModelInterceptor
from podium.security.masking import Masker, MaskingPolicy, Vault

_RESOURCE = "podium.masking.vault"


class RunVault:
    """The run's vault, shared by its tasks in this process, kept in the store (encrypted
    under the run's data key) as it grows: placeholders stay the same across tasks,
    attempts and crashes of the run."""

    def __init__(self, vault: Vault, store: VaultStore | None) -> None:
        self.vault, self.store = vault, store
        self._kept = len(vault)

    async def keep(self) -> None:
        """Store the placeholders made since the last time (before masked text leaves, so
        that a reply arriving after a crash is restored with the same mapping)."""
        if self.store is not None and len(self.vault) > self._kept:
            size = len(self.vault)
            await self.store.vault_put(self.vault.run_id, self.vault.entries())
            self._kept = max(self._kept, size)


async def run_vault(ctx: TaskContext) -> RunVault:
    """The vault of `ctx`'s run: loaded from the store once per run and shared by its tasks;
    outside an engine, a new one in memory."""
    store = ctx.vaults
    if store is None:
        return RunVault(Vault(ctx.run_id), None)

    @asynccontextmanager
    async def load() -> AsyncIterator[RunVault]:
        entries = await store.vault_get(ctx.run_id)
        yield RunVault(Vault.from_entries(ctx.run_id, entries or {}), store)

    return await ctx.resource(_RESOURCE, load)


class ModelMasking:
    """One model turn's masking, with the run's vault: the same value gets the same
    placeholder in every turn, task and attempt of the run."""

    def __init__(self, policy: MaskingPolicy, run_id: str, vault: RunVault | None = None
                 ) -> None:
        self.kept = vault
        self.masker = Masker(policy, vault=vault.vault if vault else None, run_id=run_id)
        self.unknown: list[str] = []
        self.mangled: list[str] = []

    async def keep(self) -> None:
        """Store the vault's new placeholders (see `RunVault.keep`)."""
        if self.kept is not None:
            await self.kept.keep()

    def messages(self, messages: Sequence[Message]) -> tuple[Message, ...]:
        """The conversation as the model may see it."""
        return tuple(dataclasses.replace(
            m, content=self.masker.mask(m.content).text,
            tool_calls=tuple(dataclasses.replace(c, arguments=self.masker.mask(c.arguments).text)
                             for c in m.tool_calls)) for m in messages)

    def _restore(self, text: str) -> str:
        result = self.masker.unmask(text, repair=True)
        self.unknown.extend(result.unknown)
        self.mangled.extend(result.mangled)
        return result.text

    def response(self, response: ModelResponse) -> ModelResponse:
        """The reply with this attempt's placeholders put back (repairing mangled ones that
        clearly name one; unknown ones are left and reported)."""
        calls: tuple[ToolCall, ...] = tuple(
            dataclasses.replace(c, arguments=self._restore(c.arguments))
            for c in response.tool_calls)
        return dataclasses.replace(response, text=self._restore(response.text),
                                   tool_calls=calls)

    def report(self) -> dict[str, Any]:
        """What the journal records of this turn's masking (placeholders, never values)."""
        found: dict[str, Any] = {"masked": True}
        if self.unknown:
            found["unknown_placeholders"] = sorted(set(self.unknown))
        if self.mangled:
            found["mangled_placeholders"] = sorted(set(self.mangled))
        self.unknown.clear()
        self.mangled.clear()
        return found


class Masking(ModelInterceptor):
    """Masks the personal data `policy` lists before a call reaches an external model
    (`Model.external`), and restores it in the reply; notes `masked` and any placeholders
    the reply got wrong. The vault is kept in the store before the masked text leaves. A
    masked call is not streamed: its pieces would show placeholders."""

    def __init__(self, next: ModelInterceptor, policy: MaskingPolicy) -> None:
        super().__init__(next)
        self.policy = policy

    async def call_model(self, input: ModelCallInput) -> ModelResponse:
        if not input.model.external:
            return await self.next.call_model(input)
        masking = ModelMasking(self.policy, input.ctx.run_id, await run_vault(input.ctx))
        outgoing = dataclasses.replace(input, messages=masking.messages(input.messages),
                                       on_token=None)
        await masking.keep()
        response = masking.response(await self.next.call_model(outgoing))
        input.notes.update(masking.report())
        return response
