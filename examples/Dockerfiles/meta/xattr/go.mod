module example.com/xattr

go 1.24
