"""An upload above the import size limit is dropped while the request is parsed.

Django stores every uploaded file (in memory, or on disk above FILE_UPLOAD_MAX_MEMORY_SIZE)
before a view can look at its size. This handler, first in FILE_UPLOAD_HANDLERS, skips the
file instead when the request's length is past the limit (a file just over it is stored
and refused by the view, which then knows its exact size). The request keeps the size it saw (`upload_too_large`) so the import page can say
why the file is missing. It runs wherever the body is parsed first (the CSRF check reads
the form before the view), so no view has to change its handlers.
"""
from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile

# The multipart envelope and the form's other fields on top of the file itself.
ENVELOPE = 64 * 1024


class SizeLimitUploadHandler(FileUploadHandler):
    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.request_length = content_length
        return None  # parse as usual

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        length = getattr(self, "request_length", None) or 0
        if length > settings.CRM_IMPORT_MAX_BYTES + ENVELOPE:
            self._refuse(length)

    def receive_data_chunk(self, raw_data, start):
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handler (memory or temporary file) keeps the file

    def _refuse(self, size):
        if self.request is not None:
            self.request.upload_too_large = size
        raise SkipFile()
