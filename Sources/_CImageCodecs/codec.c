// The calls common to both codecs: state queries, the row-count checks and
// the sticky failure, then dispatch to the codec's own functions.

#include "codec_internal.h"

#include <stdio.h>
#include <stdlib.h>

atr_status atr_fail(atr_status *status, char *message, atr_status failure, const char *text) {
  if (message[0] == '\0') snprintf(message, ATR_MESSAGE_CAPACITY, "%s", text ? text : "unknown error");
  *status = failure;
  return failure;
}

atr_status atr_reader_status(const atr_reader *reader) { return reader->status; }
const atr_image_info *atr_reader_info(const atr_reader *reader) { return &reader->info; }
const char *atr_reader_message(const atr_reader *reader) { return reader->message; }

const uint8_t *atr_reader_exif(const atr_reader *reader, size_t *size) {
  *size = reader->exif_bytes;
  return reader->exif;
}

atr_status atr_reader_read_rows(atr_reader *reader, uint8_t *rows, uint32_t count) {
  if (reader->status != ATR_OK) return reader->status;
  if (count > reader->info.height - reader->next_row) {
    return atr_fail(&reader->status, reader->message, ATR_ERR_ARGUMENT, "asked for rows past the end of the image");
  }
  if (count == 0) return ATR_OK;
  atr_status status = reader->read_rows(reader, rows, count);
  if (status == ATR_OK) reader->next_row += count;
  return status;
}

atr_status atr_reader_finish(atr_reader *reader) {
  if (reader->status != ATR_OK) return reader->status;
  if (reader->next_row != reader->info.height) {
    return atr_fail(&reader->status, reader->message, ATR_ERR_ARGUMENT, "finished before the last row");
  }
  return reader->finish(reader);
}

void atr_reader_close(atr_reader *reader) {
  if (reader == NULL) return;
  if (reader->destroy) reader->destroy(reader);
  free(reader->exif);
  free(reader);
}

atr_status atr_writer_status(const atr_writer *writer) { return writer->status; }
const char *atr_writer_message(const atr_writer *writer) { return writer->message; }

atr_status atr_writer_write_rows(atr_writer *writer, const uint8_t *rows, uint32_t count) {
  if (writer->status != ATR_OK) return writer->status;
  if (count > writer->height - writer->next_row) {
    return atr_fail(&writer->status, writer->message, ATR_ERR_ARGUMENT, "given rows past the end of the image");
  }
  if (count == 0) return ATR_OK;
  atr_status status = writer->write_rows(writer, rows, count);
  if (status == ATR_OK) writer->next_row += count;
  return status;
}

atr_status atr_writer_finish(atr_writer *writer) {
  if (writer->status != ATR_OK) return writer->status;
  if (writer->next_row != writer->height) {
    return atr_fail(&writer->status, writer->message, ATR_ERR_ARGUMENT, "finished before the last row");
  }
  return writer->finish(writer);
}

void atr_writer_close(atr_writer *writer) {
  if (writer == NULL) return;
  if (writer->destroy) writer->destroy(writer);
  free(writer);
}
