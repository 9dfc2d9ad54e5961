from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; a body nested deeper than the decoder's recursion
    limit is malformed input (400), not a server error.

    The standard library's decoder raises RecursionError, not ValueError,
    on ``[[[[...`` a few thousand levels deep, and DRF catches only the
    latter; such a body fits well within DATA_UPLOAD_MAX_MEMORY_SIZE.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
