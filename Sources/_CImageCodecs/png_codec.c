// PNG decode and encode over libpng. libpng reports fatal errors by calling
// our error function, which records the message and longjmps back to the
// setjmp in the entry point below; nothing else in the project sees a jump.

#include "atrous_codecs.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const uint8_t *data;
  size_t size;
  size_t position;
  /// Set to TRUNCATED when the reader runs out of bytes. Points at a volatile
  /// local of the entry point, so its value survives the longjmp.
  volatile atr_status *failure;
  char *message;
} png_reader;

typedef struct {
  uint8_t *data;
  size_t size;
  size_t capacity;
  int failed;
} png_writer;

static void copy_message(char *target, const char *text) {
  if (target == NULL) return;
  snprintf(target, ATR_MESSAGE_CAPACITY, "%s", text ? text : "unknown error");
}

static void on_png_error(png_structp png, png_const_charp text) {
  char *message = (char *)png_get_error_ptr(png);
  // A message set by the reader (truncation) is more precise than libpng's
  // follow-up text; keep the first one.
  if (message != NULL && message[0] == '\0') copy_message(message, text);
  png_longjmp(png, 1);
}

// Warnings (bad ancillary CRCs, unknown chunks) are not failures: libpng
// already discards what it cannot use, as OpenCV and PIL do. Stay silent
// rather than print to the caller's stderr.
static void on_png_warning(png_structp png, png_const_charp text) {
  (void)png;
  (void)text;
}

static void read_from_memory(png_structp png, png_bytep out, size_t count) {
  png_reader *reader = (png_reader *)png_get_io_ptr(png);
  if (count > reader->size - reader->position) {
    *reader->failure = ATR_ERR_TRUNCATED;
    copy_message(reader->message, "unexpected end of file");
    png_error(png, "unexpected end of file");
  }
  memcpy(out, reader->data + reader->position, count);
  reader->position += count;
}

static void write_to_memory(png_structp png, png_bytep bytes, size_t count) {
  png_writer *writer = (png_writer *)png_get_io_ptr(png);
  if (count > writer->capacity - writer->size) {
    size_t capacity = writer->capacity ? writer->capacity : 65536;
    while (count > capacity - writer->size) {
      if (capacity > SIZE_MAX / 2) {
        writer->failed = 1;
        png_error(png, "output too large");
      }
      capacity *= 2;
    }
    uint8_t *grown = (uint8_t *)realloc(writer->data, capacity);
    if (grown == NULL) {
      writer->failed = 1;
      png_error(png, "out of memory");
    }
    writer->data = grown;
    writer->capacity = capacity;
  }
  memcpy(writer->data + writer->size, bytes, count);
  writer->size += count;
}

static void flush_nothing(png_structp png) { (void)png; }

static int host_is_little_endian(void) {
  const uint16_t probe = 1;
  return *(const uint8_t *)&probe == 1;
}

atr_status atr_png_decode(const uint8_t *data, size_t size, uint64_t max_pixels,
                          int header_only, atr_decode_result *result) {
  memset(result, 0, sizeof(*result));
  // Written after setjmp and read after a longjmp: must be volatile.
  uint8_t *volatile pixels = NULL;
  png_bytep *volatile rows = NULL;
  volatile atr_status failure = ATR_ERR_FORMAT;
  png_reader reader = {data, size, 0, &failure, result->message};

  if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
    copy_message(result->message, "not a PNG file (bad signature)");
    return ATR_ERR_FORMAT;
  }
  // libpng sets aside a chunk's declared length before it reads the data
  // (eXIf even past png_set_chunk_malloc_max), so a 62-byte file declaring
  // a 1.9 GB chunk was allocated: every chunk must fit in the file first.
  for (size_t at = 8; at + 8 <= size;) {
    uint32_t length = ((uint32_t)data[at] << 24) | ((uint32_t)data[at + 1] << 16) |
                      ((uint32_t)data[at + 2] << 8) | data[at + 3];
    if ((uint64_t)length + 12 > size - at) {
      snprintf(result->message, ATR_MESSAGE_CAPACITY, "a chunk declares %u bytes but the file ends first", length);
      return ATR_ERR_TRUNCATED;
    }
    if (memcmp(data + at + 4, "IEND", 4) == 0) break;
    at += (size_t)length + 12;
  }

  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, result->message,
                                           on_png_error, on_png_warning);
  if (png == NULL) {
    copy_message(result->message, "out of memory");
    return ATR_ERR_MEMORY;
  }
  png_infop info = png_create_info_struct(png);
  if (info == NULL) {
    png_destroy_read_struct(&png, NULL, NULL);
    copy_message(result->message, "out of memory");
    return ATR_ERR_MEMORY;
  }

  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, NULL);
    free(pixels);
    free(rows);
    result->pixels = NULL;
    result->pixel_bytes = 0;
    if (result->message[0] == '\0') copy_message(result->message, "invalid PNG data");
    return failure;
  }

  // Our own pixel limit replaces libpng's 1,000,000-pixel-per-side default.
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  // Compressed chunks (iCCP, zTXt) may inflate past the file's size: up
  // to 16 MB here, ahead of any real profile or text.
  png_set_chunk_malloc_max(png, size > (16u << 20) ? size : (16u << 20));
  png_set_read_fn(png, &reader, read_from_memory);
  png_read_info(png, info);

  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
  int has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;

  result->info.width = width;
  result->info.height = height;
  result->info.source_bit_depth = (uint32_t)bit_depth;
  result->info.source_color_type = color_type;
  result->info.source_components = png_get_channels(png, info);
  result->info.interlaced = interlace != PNG_INTERLACE_NONE;
  result->info.has_transparency = (uint32_t)has_trns;

  if ((uint64_t)width * (uint64_t)height > max_pixels) {
    snprintf(result->message, ATR_MESSAGE_CAPACITY,
             "declared size %ux%u (%llu pixels) exceeds the pixel limit of %llu",
             (unsigned)width, (unsigned)height,
             (unsigned long long)width * (unsigned long long)height,
             (unsigned long long)max_pixels);
    failure = ATR_ERR_TOO_LARGE;
    png_longjmp(png, 1);
  }

  // Expand to 8-bit gray, gray+alpha, RGB or RGBA (16 bits stay 16), the
  // way OpenCV's IMREAD_UNCHANGED and PIL's convert do.
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (has_trns) png_set_tRNS_to_alpha(png);
  if (bit_depth == 16 && host_is_little_endian()) png_set_swap(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  uint32_t channels = png_get_channels(png, info);
  uint32_t out_depth = (uint32_t)png_get_bit_depth(png, info);
  result->info.channels = channels;
  result->info.bit_depth = out_depth;
  if (header_only) {
    png_destroy_read_struct(&png, &info, NULL);
    return ATR_OK;
  }

  size_t row_bytes = (size_t)width * channels * (out_depth / 8);
  if (png_get_rowbytes(png, info) != row_bytes || channels < 1 || channels > 4 ||
      (out_depth != 8 && out_depth != 16)) {
    png_error(png, "unexpected pixel layout after expansion");
  }
  size_t total = row_bytes * height;
  void *allocation = NULL;
  if (posix_memalign(&allocation, 64, total ? total : 64) != 0) {
    failure = ATR_ERR_MEMORY;
    png_error(png, "out of memory for pixels");
  }
  pixels = (uint8_t *)allocation;
  rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
  if (rows == NULL) {
    failure = ATR_ERR_MEMORY;
    png_error(png, "out of memory for row table");
  }
  for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + (size_t)y * row_bytes;
  png_read_image(png, rows);
  // Reads to IEND so that a file cut after the last IDAT still fails.
  png_read_end(png, NULL);

  png_destroy_read_struct(&png, &info, NULL);
  free(rows);
  result->pixels = pixels;
  result->pixel_bytes = total;
  return ATR_OK;
}

atr_status atr_png_encode(const void *pixels, uint32_t width, uint32_t height,
                          uint32_t channels, uint32_t bit_depth, int level,
                          atr_encode_result *result) {
  memset(result, 0, sizeof(*result));
  if (width == 0 || height == 0 || channels < 1 || channels > 4 ||
      (bit_depth != 8 && bit_depth != 16) || level < 0 || level > 9) {
    copy_message(result->message, "invalid image layout or compression level for PNG");
    return ATR_ERR_ARGUMENT;
  }
  static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                     PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
  // On the heap: the callbacks grow it after setjmp, and a longjmp must
  // not leave us reading a stale copy from a register.
  png_writer *writer = (png_writer *)calloc(1, sizeof(png_writer));
  png_bytep *volatile rows = NULL;
  if (writer == NULL) {
    copy_message(result->message, "out of memory");
    return ATR_ERR_MEMORY;
  }

  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, result->message,
                                            on_png_error, on_png_warning);
  if (png == NULL) {
    free(writer);
    copy_message(result->message, "out of memory");
    return ATR_ERR_MEMORY;
  }
  png_infop info = png_create_info_struct(png);
  if (info == NULL) {
    png_destroy_write_struct(&png, NULL);
    free(writer);
    copy_message(result->message, "out of memory");
    return ATR_ERR_MEMORY;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    free(rows);
    atr_status status = writer->failed ? ATR_ERR_MEMORY : ATR_ERR_FORMAT;
    free(writer->data);
    free(writer);
    if (result->message[0] == '\0') copy_message(result->message, "PNG encoding failed");
    return status;
  }

  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  png_set_write_fn(png, writer, write_to_memory, flush_nothing);
  png_set_compression_level(png, level);
  png_set_IHDR(png, info, width, height, (int)bit_depth, color_types[channels],
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  if (bit_depth == 16 && host_is_little_endian()) png_set_swap(png);

  size_t row_bytes = (size_t)width * channels * (bit_depth / 8);
  rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
  if (rows == NULL) {
    writer->failed = 1;
    png_error(png, "out of memory for row table");
  }
  for (uint32_t y = 0; y < height; y++) {
    rows[y] = (png_bytep)((const uint8_t *)pixels + (size_t)y * row_bytes);
  }
  png_write_image(png, rows);
  png_write_end(png, NULL);

  png_destroy_write_struct(&png, &info);
  free(rows);
  result->data = writer->data;
  result->size = writer->size;
  free(writer);
  return ATR_OK;
}
