# Passed to llama-cpp-python's build by the Makefile as CMAKE_PROJECT_llama.cpp_INCLUDE, so CMake reads it right
# after llama.cpp's project() call. llama-cpp-python forces LLAMA_BUILD_COMMON ON in its cache, which builds
# llama.cpp's "common" library and cpp-httplib (the largest part of the build) and ships them outside the Python
# package, where nothing loads them: the bindings load libllama and ggml only. A normal variable of the same name
# hides the cache entry in llama.cpp's directory, so those targets are never configured.
set(LLAMA_BUILD_COMMON OFF)
