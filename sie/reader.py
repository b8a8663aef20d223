"""Push-style streaming SIE reader: feed byte chunks, get typed records and findings.

Only the current partial line and the current voucher are held in memory, plus state
bounded by the chart (declared/used accounts) and the voucher series, so any file size
streams in constant memory. Nothing raises on bad input: every problem is a `Finding`.
"""

from __future__ import annotations

from typing import Final

from sie import rules
from sie.charset import CP437, UTF8, needs_repair
from sie.checksum import crc_update
from sie.codes import Code
from sie.findings import Finding, Severity
from sie.policy import ReadPolicy, Variant
from sie.reader_base import (
    AWAIT_OPEN,
    CRC_DONE,
    CRC_OFF,
    CRC_RUNNING,
    IN_BLOCK,
    NO_BLOCK,
    Handler,
    field_text,
)
from sie.record_handlers import RecordHandlers
from sie.records import (
    AccountAttribute,
    BalanceKind,
    Event,
    TextLabel,
)
from sie.summary import ChecksumStatus, ReadSummary
from sie.tokens import Field, tokenize

_BOM = b"\xef\xbb\xbf"
_OTHER_BREAKS: Final = (b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e")
"""The bytes other than CR and LF at which `str.splitlines` ends an ASCII or CP437 line."""


class SieReader(RecordHandlers):
    """Incremental SIE reader.

    Call `feed()` with each chunk of bytes as it arrives and `close()` at end of input;
    both return the records and findings completed by that call, in file order.
    `summary()` can be read at any time.
    """

    def __init__(self, policy: ReadPolicy | None = None) -> None:
        super().__init__(policy)
        self._handlers: dict[str, Handler] = self._build_handlers()

    def feed(self, chunk: bytes) -> list[Event]:
        """Consume a chunk of the file; return the records and findings it completed."""
        if self._closed:
            raise RuntimeError("SieReader.feed() after close()")
        self._bytes += len(chunk)
        data = self._pending + chunk if self._pending else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            cut = data.rfind(b"\r", 0, len(data) - 1)
        if cut < 0:
            self._pending = data
            if len(data) > self.policy.max_line_bytes:
                self._too_long()
            return self._take()
        self._pending = data[cut + 1 :]
        end = cut - 1 if cut and data[cut - 1] == 13 and data[cut] == 10 else cut  # CR of CRLF
        self._lines(data[:end])
        return self._take()

    def close(self) -> list[Event]:
        """Signal end of input: flush the last line and run the whole-file checks."""
        if self._closed:
            return []
        if self._pending and not self._skip_long:
            self._lines(self._pending[:-1] if self._pending.endswith(b"\r") else self._pending)
        elif self._skip_long:
            self._line += 1
        self._pending = b""
        self._closed = True
        self._finish()
        return self._take()

    def summary(self) -> ReadSummary:
        """Return what is known so far (complete after `close()`)."""
        return ReadSummary(
            encoding=self._decoder.encoding,
            sie_type=self._sie_type,
            program=self._program[0],
            program_version=self._program[1],
            company_name=self._company,
            org_number=self._org_number,
            financial_years=tuple(self._years),
            accounts=self._accounts,
            vouchers=self._vouchers,
            transactions=self._transactions,
            unbalanced_vouchers=self._unbalanced,
            checksum=self._checksum,
            errors=self._errors,
            warnings=self._warnings,
            lines=self._line,
            bytes_read=self._bytes,
        )

    # ------------------------------------------------------------------ lines
    def _take(self) -> list[Event]:
        out, self._out = self._out, []
        return out

    def _too_long(self) -> None:
        if not self._skip_long:
            self._report(
                Code.LINE_TOO_LONG,
                Severity.ERROR,
                self._line + 1,
                f"line longer than {self.policy.max_line_bytes} bytes skipped",
            )
            self._skip_long = True
        self._pending = b""

    def _decode(self, block: bytes) -> str:
        """Decode a block of whole lines, at once when its encoding is already settled."""
        text = self._settled(block)
        if text is not None:
            return text
        if self._decoder.encoding == UTF8:
            try:
                return block.decode(UTF8)
            except UnicodeDecodeError:
                pass
        decode = self._decoder.decode
        return "\n".join(
            raw.decode("ascii") if raw.isascii() else decode(raw, number)
            for number, raw in enumerate(block.split(b"\n"), self._line + 1)
        )

    def _settled(self, block: bytes) -> str | None:
        """`block` decoded, when it is ASCII or plain CP437 in a CP437 file; else None."""
        if block.isascii():
            return block.decode("ascii")
        if self._decoder.encoding == CP437 and not needs_repair(block):
            return block.decode(CP437)
        return None

    def _lines(self, block: bytes) -> None:
        if self._line == 0 and block.startswith(_BOM):
            block = block[3:]
            self._decoder.encoding = UTF8
        if b"\r" not in block:
            self._scan(self._decode(block).split("\n"))
            return
        text = self._settled(block)
        if text is None or any(other in block for other in _OTHER_BREAKS):
            block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            self._scan(self._decode(block).split("\n"))
            return
        # CRLF (or CR) lines, as Fortnox writes them: split where the line ends, without
        # copying the block to LF twice first. `splitlines` also ends a line at the few
        # characters in `_OTHER_BREAKS` (none here: neither ASCII nor CP437 decodes to its
        # Unicode-only breaks) and, unlike `split`, keeps no empty last line.
        lines = text.splitlines()
        if not text or text[-1] in "\r\n":
            lines.append("")
        self._scan(lines)

    def _scan(self, lines: list[str]) -> None:
        """Read every line of a block of whole lines."""
        source = self._source
        for raw in lines:
            self._line += 1
            if source is None:
                self._one_line(raw)
            else:
                self._kept_line(raw, source)
                source = self._source

    def _kept_line(self, raw: str, source: list[str]) -> None:
        """Read a line and keep it as part of the voucher it belongs to."""
        if self._block != NO_BLOCK:
            source.append(raw)
        self._one_line(raw)
        if self._head is not None and self._head.line == self._line:  # the line began a voucher
            self._source = [raw]

    def _one_line(self, text: str) -> None:
        if self._skip_long:
            self._skip_long = False
            return
        text = text.strip(" \t")
        if not text or self._rejected:
            return
        if len(text) > self._max_line:
            self._report(
                Code.LINE_TOO_LONG,
                Severity.ERROR,
                self._line,
                f"line longer than {self._max_line} bytes skipped",
            )
            return
        if self._crc_state != CRC_RUNNING:  # fast paths for the voucher lines
            state = self._block
            if state == IN_BLOCK:
                if text == "}":
                    self._finish_voucher()
                    return
                if self._fast_row(text, self._line):
                    return
            elif state == AWAIT_OPEN:
                if text == "{":
                    self._block = IN_BLOCK
                    return
            elif self._started and text.startswith("#VER "):
                if not self._fast_ver(text, self._line):
                    self._on_ver(tokenize(text), self._line)
                return
        self._record(text, self._line)

    def _record(self, text: str, line: int) -> None:
        first = text[0]
        if not self._started:
            self._started = True
            if first != "#":
                self._rejected = True
                self._report(
                    Code.NOT_SIE,
                    Severity.ERROR,
                    line,
                    "not a SIE file: the first line is not a #-record",
                )
                return
        if first == "#":
            fields = tokenize(text)
            label = fields[0]
            assert isinstance(label, str)
            if self._crc_state == CRC_RUNNING and label != "#KSUMMA":
                self._crc = crc_update(self._crc, fields)
            handler = self._handlers.get(label)
            if handler is None:
                handler = self._handlers.get(label.upper())
                if handler is None:
                    self._unknown(label, line)
                    return
            handler(fields, line)
        elif first == "{":
            self._open_block(text, line)
        elif first == "}":
            self._close_block(line)
        else:
            self._report(
                Code.MALFORMED_RECORD,
                Severity.WARNING,
                line,
                "line does not start with a #-label; ignored",
            )

    # ------------------------------------------------------------------ records
    def _build_handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = {
            "#FLAGGA": self._on_flag,
            "#PROGRAM": self._on_program,
            "#GEN": self._on_gen,
            "#SIETYP": self._on_sietyp,
            "#ORGNR": self._on_orgnr,
            "#ADRESS": self._on_address,
            "#RAR": self._on_rar,
            "#TAXAR": self._on_taxar,
            "#OMFATTN": self._on_omfattn,
            "#KONTO": self._on_konto,
            "#DIM": self._on_dim,
            "#UNDERDIM": self._on_dim,
            "#OBJEKT": self._on_objekt,
            "#VER": self._on_ver,
            "#TRANS": self._on_row,
            "#RTRANS": self._on_row,
            "#BTRANS": self._on_row,
            "#KSUMMA": self._on_ksumma,
        }
        for text_label in TextLabel:
            handlers[text_label.value] = self._on_text
        for attribute in AccountAttribute:
            handlers[attribute.value] = self._on_account_info
        for kind in BalanceKind:
            handlers["#" + kind.value] = self._on_balance
        return handlers

    # ------------------------------------------------------------------ checksum
    def _on_ksumma(self, fields: list[Field], line: int) -> None:
        self._known_records += 1
        if len(fields) == 1:
            if self._crc_state == CRC_OFF:
                self._crc_state = CRC_RUNNING
            else:
                self._malformed(line, "repeated opening #KSUMMA ignored", Severity.WARNING)
            return
        stated = field_text(fields, 1)
        if self._crc_state != CRC_RUNNING:
            self._checksum = ChecksumStatus.MISMATCH
            self._report(
                Code.CHECKSUM_MISMATCH,
                Severity.ERROR,
                line,
                "closing #KSUMMA without an opening #KSUMMA marker; cannot verify",
            )
        elif stated == str(self._crc):
            self._checksum = ChecksumStatus.VERIFIED
        else:
            self._checksum = ChecksumStatus.MISMATCH
            self._report(
                Code.CHECKSUM_MISMATCH,
                Severity.ERROR,
                line,
                f"#KSUMMA mismatch: file states {stated}, computed {self._crc}",
            )
        self._crc_state = CRC_DONE

    # ------------------------------------------------------------------ end of file
    def _finish(self) -> None:
        if self._rejected:
            return
        if not self._started or self._known_records == 0:
            self._report(Code.NOT_SIE, Severity.ERROR, None, "not a SIE file: no SIE record found")
            return
        if self._block != NO_BLOCK:
            assert self._head is not None
            self._report(
                Code.TRUNCATED,
                Severity.ERROR,
                self._head.line,
                "input ends inside the voucher that starts here",
            )
            self._block = NO_BLOCK
            self._head = None
        if self._crc_state == CRC_RUNNING:
            self._checksum = ChecksumStatus.MISMATCH
            self._report(
                Code.TRUNCATED,
                Severity.ERROR,
                None,
                "opening #KSUMMA without the closing #KSUMMA: the file is truncated",
            )
        self._check_mandatory()
        self._check_accounts()
        self._check_encoding()
        self._report_limits()

    def _type_key(self) -> str:
        sie_type = self._sie_type or 1
        if sie_type != 4:
            return str(sie_type)
        return self.policy.variant.value if self.policy.variant else "4"

    def _check_mandatory(self) -> None:
        key = self._type_key()
        severity = Severity.ERROR if self.policy.strict_mandatory else Severity.WARNING
        for label in rules.MANDATORY[key]:
            if label not in self._labels_seen:
                self._report(
                    Code.MISSING_MANDATORY_RECORD,
                    severity,
                    None,
                    f"mandatory record {label} is missing for type {key}",
                )

    def _check_accounts(self) -> None:
        if not self._declared and self._type_key() == Variant.IMPORT.value:
            return  # 4I files may rely on the receiver's chart
        for account, line in self._undeclared.items():
            if account not in self._declared:
                self._report(
                    Code.ACCOUNT_NOT_DECLARED,
                    Severity.WARNING,
                    line,
                    f"account {account} is used but not declared with #KONTO",
                )

    def _check_encoding(self) -> None:
        decoder = self._decoder
        if decoder.repaired_line is not None:
            self._report(
                Code.ENCODING_REPAIRED,
                Severity.WARNING,
                decoder.repaired_line,
                "Latin-1 letters inside CP437 text were decoded as Latin-1 (first here)",
            )
        if decoder.mixed_line is not None:
            self._report(
                Code.ENCODING_MIXED,
                Severity.WARNING,
                decoder.mixed_line,
                "line is not UTF-8 unlike the rest of the file; decoded as CP437",
            )

    def _report_limits(self) -> None:
        limit = self.policy.max_findings_per_code
        for code, count in list(self._per_code.items()):
            if count > limit:
                self._out.append(
                    Finding(
                        Severity.WARNING,
                        Code.FINDINGS_LIMIT,
                        None,
                        f"{count - limit} more {code} findings not listed",
                    )
                )
