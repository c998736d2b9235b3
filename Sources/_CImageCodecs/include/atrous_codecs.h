#ifndef ATROUS_CODECS_H
#define ATROUS_CODECS_H

// Row-by-row readers and writers over libpng and libjpeg. Every
// setjmp/longjmp of the libraries stays inside these functions: each sets
// its own jump point and returns normally with a status and, on failure,
// the library's own message.

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  ATR_OK = 0,
  /// The library rejected the data; `message` holds its reason.
  ATR_ERR_FORMAT = 1,
  /// The declared size exceeds the caller's pixel limit (nothing allocated).
  ATR_ERR_TOO_LARGE = 2,
  /// An allocation failed.
  ATR_ERR_MEMORY = 3,
  /// Valid data that this build cannot decode (e.g. 12-bit JPEG).
  ATR_ERR_UNSUPPORTED = 4,
  /// The data ended before the image was complete.
  ATR_ERR_TRUNCATED = 5,
  /// The caller passed arguments the encoder cannot take.
  ATR_ERR_ARGUMENT = 6,
} atr_status;

#define ATR_MESSAGE_CAPACITY 256

/// What a decode found. Sizes in pixels; `channels` and `bit_depth` describe
/// the decoded pixels (after palette and low-bit-depth expansion).
typedef struct {
  uint32_t width;
  uint32_t height;
  /// 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
  uint32_t channels;
  /// 8 or 16.
  uint32_t bit_depth;

  /// PNG: IHDR bit depth. JPEG: data precision.
  uint32_t source_bit_depth;
  /// PNG: IHDR colour type. JPEG: J_COLOR_SPACE of the file.
  int32_t source_color_type;
  /// PNG: number of components as stored. JPEG: number of components.
  uint32_t source_components;
  /// PNG: Adam7. JPEG: progressive.
  uint32_t interlaced;
  /// PNG: tRNS present. Unused for JPEG.
  uint32_t has_transparency;
  /// JPEG: arithmetic coding. Unused for PNG.
  uint32_t arithmetic;
} atr_image_info;

/// A decoder that hands out rows top to bottom, so a caller can hold a few
/// rows of a large image instead of all of it.
///
/// Every call returns a status; after a failure the reader stays failed
/// (later calls return the same status) and `atr_reader_message` gives the
/// library's reason. The caller closes every reader it opened, failed or not.
typedef struct atr_reader atr_reader;

/// Opens a PNG read from `file` (which stays the caller's; it must be
/// seekable: every chunk is checked to fit in it first) and reads its header.
/// Images whose declared width*height exceeds `max_pixels` fail with
/// ATR_ERR_TOO_LARGE before any pixel is allocated. Decoded rows are 8-bit
/// gray, gray+alpha, RGB or RGBA, or 16-bit in host byte order. NULL only
/// when memory for the reader itself is lacking.
atr_reader *atr_png_reader_open(FILE *file, uint64_t max_pixels);

/// Opens a JPEG read from `file` (which stays the caller's) and reads its
/// header, as `atr_png_reader_open`. Rows are gray (1 channel) or RGB (3);
/// CMYK and YCCK are converted to RGB.
atr_reader *atr_jpeg_reader_open(FILE *file, uint64_t max_pixels);

atr_status atr_reader_status(const atr_reader *reader);
/// The image's size and layout; width and height are set even when the
/// image was too large.
const atr_image_info *atr_reader_info(const atr_reader *reader);
/// NUL-terminated reason of the failure, empty while the status is ATR_OK.
const char *atr_reader_message(const atr_reader *reader);
/// The TIFF payload of a JPEG's Exif APP1 segment (after "Exif\0\0"), or
/// NULL; owned by the reader.
const uint8_t *atr_reader_exif(const atr_reader *reader, size_t *size);

/// Decodes the next `count` rows into `rows`, rows of
/// width * channels * bit_depth / 8 bytes, one after another. Asking for
/// more rows than remain is ATR_ERR_ARGUMENT. An interlaced PNG is decoded
/// whole into the reader on the first call, unless that call asks for every
/// row: then it is decoded into `rows` directly.
atr_status atr_reader_read_rows(atr_reader *reader, uint8_t *rows, uint32_t count);

/// Reads what follows the last row (to PNG's IEND, JPEG's EOI), so a file
/// cut after its pixels still fails.
atr_status atr_reader_finish(atr_reader *reader);

void atr_reader_close(atr_reader *reader);

/// An encoder that takes rows top to bottom and writes the file as it goes.
/// Failures stay, as with `atr_reader`; the caller closes every writer.
typedef struct atr_writer atr_writer;

/// Starts a PNG of interleaved rows (1-4 channels, 8 or 16 bits, 16-bit
/// samples in host byte order) written to `file`, which stays the caller's
/// (it flushes and closes it). `level` is the zlib level, 0-9. NULL only
/// when memory for the writer itself is lacking.
atr_writer *atr_png_writer_open(FILE *file, uint32_t width, uint32_t height, uint32_t channels,
                                uint32_t bit_depth, int level);

/// Starts a baseline JPEG of 8-bit gray (1 channel) or RGB (3) rows with
/// 4:2:0 chroma subsampling, written to `file`. `quality` is 1-100.
atr_writer *atr_jpeg_writer_open(FILE *file, uint32_t width, uint32_t height, uint32_t channels,
                                 int quality);

atr_status atr_writer_status(const atr_writer *writer);
const char *atr_writer_message(const atr_writer *writer);

/// Encodes the next `count` rows, one after another in `rows`. Passing more
/// rows than the image has left is ATR_ERR_ARGUMENT.
atr_status atr_writer_write_rows(atr_writer *writer, const uint8_t *rows, uint32_t count);

/// Writes the end of the file once every row was written.
atr_status atr_writer_finish(atr_writer *writer);

void atr_writer_close(atr_writer *writer);

/// Inflates raw deflate data (no zlib or gzip header, as ZIP entries hold
/// it) into exactly `out_size` bytes.
atr_status atr_inflate_raw(const uint8_t *data, size_t size, uint8_t *out, size_t out_size,
                           char message[ATR_MESSAGE_CAPACITY]);

#ifdef __cplusplus
}
#endif

#endif
