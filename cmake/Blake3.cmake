# BLAKE3 from the official C sources that Debian ships in librust-blake3-dev.
# Natively: x86-64 unix assembly for SSE2/SSE4.1/AVX2/AVX-512 with runtime dispatch.
# Under emscripten: BLAKE3's SSE4.1 code compiled to WebAssembly SIMD, in the
# 4-way slot (src/core/blake3_wasm_simd.c says how); the rest portable.
set(P2PCDN_BLAKE3_DIR "" CACHE PATH "Folder holding blake3.c (Debian: librust-blake3-dev)")
if(NOT P2PCDN_BLAKE3_DIR)
  file(GLOB _b3 "/usr/share/cargo/registry/blake3-*/c/blake3.c")
  list(SORT _b3)
  list(REVERSE _b3)
  list(GET _b3 0 _b3c)
  if(NOT _b3c)
    message(FATAL_ERROR "BLAKE3 C sources not found; install librust-blake3-dev (scripts/install-deps.sh)")
  endif()
  get_filename_component(P2PCDN_BLAKE3_DIR "${_b3c}" DIRECTORY)
endif()
message(STATUS "BLAKE3 C sources: ${P2PCDN_BLAKE3_DIR}")

set(_b3_src
  ${P2PCDN_BLAKE3_DIR}/blake3.c
  ${P2PCDN_BLAKE3_DIR}/blake3_dispatch.c
  ${P2PCDN_BLAKE3_DIR}/blake3_portable.c)
if(NOT EMSCRIPTEN AND CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  list(APPEND _b3_src
    ${P2PCDN_BLAKE3_DIR}/blake3_sse2_x86-64_unix.S
    ${P2PCDN_BLAKE3_DIR}/blake3_sse41_x86-64_unix.S
    ${P2PCDN_BLAKE3_DIR}/blake3_avx2_x86-64_unix.S
    ${P2PCDN_BLAKE3_DIR}/blake3_avx512_x86-64_unix.S)
  set(_b3_defs "")
elseif(EMSCRIPTEN)
  list(APPEND _b3_src ${P2PCDN_BLAKE3_DIR}/blake3_sse41.c ${PROJECT_SOURCE_DIR}/src/core/blake3_wasm_simd.c)
  set_source_files_properties(${P2PCDN_BLAKE3_DIR}/blake3_sse41.c PROPERTIES COMPILE_OPTIONS "-msimd128;-msse4.1")
  set(_b3_defs BLAKE3_USE_NEON=1 BLAKE3_NO_SSE2 BLAKE3_NO_SSE41 BLAKE3_NO_AVX2 BLAKE3_NO_AVX512)
else()
  set(_b3_defs BLAKE3_NO_SSE2 BLAKE3_NO_SSE41 BLAKE3_NO_AVX2 BLAKE3_NO_AVX512)
endif()
add_library(p2pcdn_blake3 STATIC ${_b3_src})
target_compile_definitions(p2pcdn_blake3 PRIVATE ${_b3_defs})
target_include_directories(p2pcdn_blake3 SYSTEM PUBLIC ${P2PCDN_BLAKE3_DIR})
set_target_properties(p2pcdn_blake3 PROPERTIES POSITION_INDEPENDENT_CODE ON)
if(P2PCDN_FUZZ OR P2PCDN_SANITIZE)
  # The assembly is not instrumented; keep the C parts un-instrumented too so
  # the sanitizers only look at our code.
  target_compile_options(p2pcdn_blake3 PRIVATE -fno-sanitize=all)
endif()
